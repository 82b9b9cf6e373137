"""Data layer: bilingual dictionaries (MUSE, Wiktionary, composed through English), FLORES-200
sentences and passages, Belebele items. Every reader takes `data_dir` (default: the bundled
`probes/data`, or `$NEURONOVERLAP_DATA_DIR`). See docs/data.md.
"""

from neuronoverlap.data.belebele import (
    BelebeleItem,
    belebele_file,
    match_passage_url,
    passage_urls,
    read_belebele,
    read_belebele_file,
    unquote_csv,
    with_passages,
)
from neuronoverlap.data.dictionaries import (
    BilingualDictionary,
    SourceFile,
    compose,
    dictionary_files,
    load_dictionary,
    read_dictionary,
    read_word_pairs,
)
from neuronoverlap.data.flores import (
    FLORES_SPLITS,
    FloresLineInfo,
    flores_file,
    flores_passages,
    read_flores,
    read_flores_aligned,
    read_flores_metadata,
)
from neuronoverlap.data.paths import DATA_ENV_VAR, bundled_data_dir, resolve_data_dir

__all__ = [
    "DATA_ENV_VAR",
    "FLORES_SPLITS",
    "BelebeleItem",
    "BilingualDictionary",
    "FloresLineInfo",
    "SourceFile",
    "belebele_file",
    "bundled_data_dir",
    "compose",
    "dictionary_files",
    "flores_file",
    "flores_passages",
    "load_dictionary",
    "match_passage_url",
    "passage_urls",
    "read_belebele",
    "read_belebele_file",
    "read_dictionary",
    "read_flores",
    "read_flores_aligned",
    "read_flores_metadata",
    "read_word_pairs",
    "resolve_data_dir",
    "unquote_csv",
    "with_passages",
]
