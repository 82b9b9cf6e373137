"""Where the data is read from: the bundled folder, the environment variable, --data-dir."""

import hashlib
import shutil
from pathlib import Path

import pytest

from neuronoverlap.data import (
    DATA_ENV_VAR,
    bundled_data_dir,
    load_dictionary,
    paths,
    resolve_data_dir,
)
from neuronoverlap.errors import InputError

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "probes" / "data"


def test_the_default_is_the_checkouts_probes_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    assert bundled_data_dir() == BUNDLED
    assert resolve_data_dir(None) == BUNDLED
    assert {p.name for p in BUNDLED.iterdir() if p.is_dir()} == {
        "muse",
        "wiktionary",
        "flores200",
        "belebele",
    }


def test_the_environment_variable_wins(monkeypatch, tmp_path):
    shutil.copy(BUNDLED / "muse" / "en-de.5000-6500.txt", tmp_path)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert bundled_data_dir() == tmp_path
    assert load_dictionary("en", "de").sources[0].path == tmp_path / "en-de.5000-6500.txt"
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(InputError, match=f"{DATA_ENV_VAR}=.*missing is not a folder"):
        bundled_data_dir()


def test_without_a_bundled_folder_the_error_says_to_pass_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(paths, "_REPO_DATA_DIR", tmp_path / "site-packages" / "probes" / "data")
    with pytest.raises(InputError, match="pass --data-dir"):
        load_dictionary("en", "de")


def test_an_explicit_data_dir_must_exist(tmp_path):
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(str(tmp_path)) == tmp_path
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        resolve_data_dir(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        resolve_data_dir(tmp_path / "file.txt")


def test_the_library_never_reads_the_shared_folder():
    for source in (REPO / "src" / "neuronoverlap" / "data").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "/work/" not in text and "shared" not in text, source.name


@pytest.mark.parametrize(
    ("relative", "sha256"),
    [
        ("muse/zh-en.5000-6500.txt", "b0f9156009d77f3922bee923d8a8fd8f8aeebb2b33d415e0e148e9411e1632f7"),
        ("wiktionary/sw-en.test.txt", "5284ed781cafc5549a741c2ac5a856d4e19714a8580e5cad4952a33e2e5c0a27"),
        ("flores200/dev/en.dev", "51a25f527fd81f428b6933d85a2f5e5544af92aa82042c7fbf0c4120327fba0a"),
        ("flores200/metadata_dev.tsv", "26e7b00913809be16aa2590e5e252f0a54832eef2de96b3948876878995ec771"),
        ("belebele/eng_Latn.jsonl", "37dfb8e7c02dba4ab5315d238acacfd2cba484f96bdbfd53981848374be0a464"),
    ],
)
def test_bundled_files_are_unchanged(relative, sha256):
    assert hashlib.sha256((BUNDLED / relative).read_bytes()).hexdigest() == sha256


def test_the_licenses_are_bundled_with_the_data():
    text = (BUNDLED / "LICENSES.md").read_text(encoding="utf-8")
    for needle in ["CC BY-NC 4.0", "CC BY-SA 4.0", "MUSE", "FLORES-200", "Belebele", "Wiktionary"]:
        assert needle in text
