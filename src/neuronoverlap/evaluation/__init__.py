"""X-ICL evaluation: bilingual lexicon induction and Belebele reading comprehension, zero-shot
versus bridged through another language, with answer extraction and paired statistics; the
bridge-selection validation study (`validation`, `study`). See docs/evaluation.md."""

from neuronoverlap.evaluation.bli import (
    PROMPT_STYLES,
    BLIPrompts,
    BLIRecord,
    evaluate_bli,
    render_bridged,
    write_bli_results,
)
from neuronoverlap.evaluation.extraction import (
    extract_answer,
    extract_bridge_word,
    extract_choice,
    is_hit,
    normalize_word,
)
from neuronoverlap.evaluation.mrc import MRCPrompts, MRCRecord, evaluate_mrc, write_mrc_results
from neuronoverlap.evaluation.protocol import Example, choose_examples, is_identical, load_examples
from neuronoverlap.evaluation.results import (
    Comparison,
    ConditionResult,
    EvaluationResult,
    OracleComparison,
    oracle_comparison,
    write_results,
)
from neuronoverlap.evaluation.statistics import (
    Accuracy,
    McNemarResult,
    bootstrap_ci,
    mcnemar_test,
    paired_bootstrap_ci,
    wilson_interval,
)

__all__ = [
    "PROMPT_STYLES",
    "Accuracy",
    "BLIPrompts",
    "BLIRecord",
    "Comparison",
    "ConditionResult",
    "EvaluationResult",
    "MRCPrompts",
    "MRCRecord",
    "McNemarResult",
    "OracleComparison",
    "bootstrap_ci",
    "Example",
    "choose_examples",
    "evaluate_bli",
    "extract_bridge_word",
    "is_identical",
    "load_examples",
    "evaluate_mrc",
    "extract_answer",
    "extract_choice",
    "is_hit",
    "mcnemar_test",
    "normalize_word",
    "oracle_comparison",
    "paired_bootstrap_ci",
    "render_bridged",
    "wilson_interval",
    "write_bli_results",
    "write_mrc_results",
    "write_results",
]
