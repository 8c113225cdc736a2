"""Round 15b: saved tag, theme and duplicate models as folders that travel between people. A careless user
saves over another model, is interrupted mid-save, saves into a project folder; an attacker hands over a folder
with JSON nested past the parser's depth, a version that is not a number, a cut ``.npz``, a pickle, tag names
that close the card's code spans. Loading is one IntegrityError naming the folder and never runs code; a save
appears whole or not at all. Models embed with the HashEmbedder test double: nothing is downloaded or trained
beyond a logistic regression."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import HashEmbedder
from feedback_nlp._persist import write_manifest
from feedback_nlp.dedupe import Deduper
from feedback_nlp.errors import IntegrityError, InvalidInputError
from feedback_nlp.tagging import TagClassifier
from feedback_nlp.themes import ThemeModel

TEXTS = ["crash now", "crash again", "it crashes", "add dark mode", "add export", "add a button"] * 3
LABELS = ["bug", "bug", "bug", "feature", "feature", "feature"] * 3
OTHER = ["crash", "crash", "crash", "ask", "ask", "ask"] * 3
EMB = HashEmbedder()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """One saved folder of each kind: tag model, theme model, duplicate index."""
    root = tmp_path_factory.mktemp("saved")
    return {"tag": TagClassifier(EMB, cv=2).fit(TEXTS, LABELS).save(root / "tag"),
            "theme": ThemeModel(EMB).fit(TEXTS * 2).save(root / "theme"),
            "dedupe": Deduper(EMB).fit(TEXTS).save(root / "dedupe")}


LOADERS = {"tag": TagClassifier.load, "theme": ThemeModel.load, "dedupe": Deduper.load}


def _copy(saved: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved[kind], tmp_path / kind))


def _load(kind: str, folder: Path):
    return LOADERS[kind](folder, embedder=EMB)


# --- saving: whole or not at all ----------------------------------------------------------------

def test_a_save_interrupted_over_a_model_leaves_that_model_whole(saved, tmp_path, monkeypatch):
    # was: the new weights and config were written into the folder, the manifest recomputed, then the card: a save
    # stopped before the card left a folder that loaded the new tags ['ask', 'crash'] under the card of the old
    # model, which listed `bug` and `feature`
    import feedback_nlp.model_card as model_card

    folder = _copy(saved, "tag", tmp_path)
    card = (folder / "README.md").read_text()
    newer = TagClassifier(EMB, cv=2).fit(TEXTS, OTHER)

    def stopped(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_card, "render_model_card", stopped)
    with pytest.raises(KeyboardInterrupt):
        newer.save(folder)
    assert _load("tag", folder).classes_.tolist() == ["bug", "feature"]
    assert (folder / "README.md").read_text() == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tag"]  # no temp folder left beside it
    monkeypatch.undo()
    assert _load("tag", newer.save(folder)).classes_.tolist() == ["ask", "crash"]
    assert "`crash`" in (folder / "README.md").read_text()


@pytest.mark.parametrize(("first", "then"), [("tag", "theme"), ("theme", "tag"), ("tag", "dedupe"), ("dedupe", "tag")])
def test_saving_over_another_kind_of_model_keeps_none_of_its_files(saved, tmp_path, first, then):
    # was: a theme model saved over a tag model kept weights.npz and the tag model's README.md (a card describing
    # a tag model, in a theme model's folder, covered by its manifest); a tag model over a theme model kept
    # themes.npz and items.json
    folder = _copy(saved, first, tmp_path)
    model = _load(then, saved[then])
    model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in saved[then].iterdir())
    assert type(_load(then, folder)) is type(model)


def test_a_folder_holding_a_config_json_that_feedback_nlp_did_not_write_is_not_replaced(saved, tmp_path):
    # was: a folder with a config.json counted as a saved model: save overwrote the project's config.json and
    # adopted every other file of the folder into the model's manifest
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"debug": true}')
    (project / "app.py").write_text("print('hi')\n")
    with pytest.raises(InvalidInputError, match="holds other files"):
        _load("tag", saved["tag"]).save(project)
    assert (project / "config.json").read_text() == '{"debug": true}'
    assert sorted(p.name for p in project.iterdir()) == ["app.py", "config.json"]


def test_save_back_into_the_folder_it_was_loaded_from_and_through_a_link(saved, tmp_path):
    folder = _copy(saved, "tag", tmp_path)
    clf = _load("tag", folder)
    clf.set_params(min_confidence=0.4)
    assert clf.save(folder) == folder
    assert _load("tag", folder).min_confidence == 0.4
    link = tmp_path / "current"
    link.symlink_to(folder)
    clf.set_params(min_confidence=0.2)
    clf.save(link)
    assert link.is_symlink() and _load("tag", link).min_confidence == 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "tag"]


def test_saving_into_a_read_only_place_leaves_nothing(saved, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            _load("tag", saved["tag"]).save(ro / "model")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


# --- loading: hostile folders are one IntegrityError ----------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("kind", "name"), [("tag", "manifest.json"), ("tag", "config.json"),
                                            ("theme", "items.json"), ("dedupe", "items.json")])
def test_json_nested_past_the_parsers_depth_is_an_integrity_error(saved, tmp_path, kind, name):
    # was: a bare RecursionError from json
    folder = _copy(saved, kind, tmp_path)
    (folder / name).write_text(DEEP)
    if name != "manifest.json":
        write_manifest(folder)  # an attacker recomputes the checksums
    with pytest.raises(IntegrityError, match=str(folder)):
        _load(kind, folder)


@pytest.mark.parametrize("version", ["2", [1], None, {"v": 1}, True])
def test_a_manifest_version_that_is_not_a_number_is_an_integrity_error(saved, tmp_path, version):
    # was: TypeError: '>' not supported between instances of 'str' and 'int'
    folder = _copy(saved, "tag", tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    with pytest.raises(IntegrityError, match="manifest version"):
        _load("tag", folder)


@pytest.mark.parametrize("version", ["9", None, [1], 2.5])
def test_a_format_version_that_is_not_a_number_is_an_integrity_error(saved, tmp_path, version):
    # was: TypeError for "9", None or [1]; 2.5 loaded
    folder = _copy(saved, "tag", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": version}))
    write_manifest(folder)
    with pytest.raises(IntegrityError, match="format version"):
        _load("tag", folder)


def test_a_manifest_or_format_from_the_future_is_refused_and_the_past_loads(saved, tmp_path):
    folder = _copy(saved, "tag", tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
    with pytest.raises(IntegrityError, match="newer feedback_nlp"):
        _load("tag", folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=r"newer feedback_nlp \(format 99\)"):
        _load("tag", folder)


@pytest.mark.parametrize(("kind", "name"), [("tag", "weights.npz"), ("theme", "themes.npz")])
@pytest.mark.parametrize("cut", [0, 100])
def test_an_empty_or_cut_npz_with_recomputed_checksums_is_an_integrity_error(saved, tmp_path, kind, name, cut):
    # was: a bare EOFError (empty) or zipfile.BadZipFile (cut)
    folder = _copy(saved, kind, tmp_path)
    (folder / name).write_bytes((folder / name).read_bytes()[:cut])
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=rf"{name} is not a readable \.npz archive"):
        _load(kind, folder)


@pytest.mark.parametrize(("kind", "name", "key"), [("tag", "weights.npz", "coef_"),
                                                   ("theme", "themes.npz", "labels"),
                                                   ("dedupe", "embeddings.npy", None)])
def test_a_pickle_planted_in_a_saved_array_never_runs(saved, tmp_path, monkeypatch, kind, name, key):
    """Proof that loading runs no code: an object array (stored as a pickle whose ``__reduce__`` writes a
    file) replaces a saved array and the manifest is recomputed, as an attacker would."""
    monkeypatch.chdir(tmp_path)
    folder = _copy(saved, kind, tmp_path)
    planted = np.array([_RunsCode()], dtype=object)
    if key is None:
        np.save(folder / name, planted, allow_pickle=True)
    else:
        with np.load(folder / name) as data:
            arrays = {k: data[k] for k in data.files}
        np.savez(folder / name, **{**arrays, key: planted})
    with zipfile.ZipFile(folder / name) if key else open(folder / name, "rb") as f:  # the pickle is really there
        assert b"pwned" in (f.read(f"{key}.npy") if key else f.read())  # type: ignore[call-arg]
    write_manifest(folder)
    with pytest.raises(IntegrityError):
        _load(kind, folder)
    assert not (tmp_path / "pwned.txt").exists()


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_the_pickle_would_have_run_had_it_been_unpickled(tmp_path, monkeypatch):
    # the planted object is live: the test above proves something only if unpickling it writes the file
    monkeypatch.chdir(tmp_path)
    pickle.loads(pickle.dumps(_RunsCode()))  # noqa: S301 - on purpose
    assert (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize(("kind", "other"), [("tag", "theme"), ("theme", "tag"), ("dedupe", "theme"),
                                             ("tag", "dedupe")])
def test_a_model_of_another_kind_is_named_as_such(saved, kind, other):
    # was: "... is not a saved feedback_nlp.TagClassifier", without saying what the folder does hold
    name = {"tag": "TagClassifier", "theme": "ThemeModel", "dedupe": "Deduper"}[other]
    with pytest.raises(IntegrityError, match=rf"is not a saved feedback_nlp\.\w+: it holds a saved {name}; load it "
                                             rf"with {name}\.load"):
        _load(kind, saved[other])


def test_a_tag_model_name_that_is_neither_a_folder_nor_bundled_is_a_clear_error():
    from feedback_nlp.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match=r"no bundled model of that name; bundled: \['request-type', "):
        TagClassifier.load("no-such-model")
    with pytest.raises(ModelNotFoundError):
        TagClassifier.load("../../etc")


# --- the model card --------------------------------------------------------------------------------

HOSTILE_TAGS = ["a``<img src=x onerror=alert(1)>", "<b>bold</b>", "x|y", "`tick", "end``"]


def test_the_card_renders_hostile_tag_and_metric_names_as_text(tmp_path):
    # was: a tag holding two backticks closed the two-backtick code span early, and the rest of the name was HTML
    # of the rendered card (<img src=x onerror=alert(1)>); metric names and the "Measured on" line went in as HTML
    markdown_it = pytest.importorskip("markdown_it")
    labels = [HOSTILE_TAGS[i % len(HOSTILE_TAGS)] for i in range(30)]
    clf = TagClassifier(EMB, cv=2).fit([f"{t} {i}" for i, t in enumerate(TEXTS + TEXTS[:12])], labels)
    folder = clf.save(tmp_path / "m", metrics={"<img src=y onerror=alert(2)>": 1.0,
                                               "evaluation": "<script>alert(3)</script>"})
    html = markdown_it.MarkdownIt("commonmark").enable("table").render((folder / "README.md").read_text())
    for raw in ("<img", "<script", "<b>"):
        assert raw not in html
    row = next(line for line in html.split("<tr>") if "tags (5)" in line)
    assert row.count("<code>") == 5  # each tag one code span, whole
    for tag in HOSTILE_TAGS:
        shown = tag.replace("<", "&lt;").replace(">", "&gt;")
        assert f"<code>{shown}</code>" in row


@pytest.mark.parametrize("where", ["../../elsewhere", "/etc", "1_Pooling/../../..", "C:\\models\\x", 7])
def test_a_saved_encoder_whose_modules_live_outside_it_is_refused(saved, tmp_path, where):
    # was: accepted; sentence-transformers (or feedback_nlp's own mean-pooling loader, for the Pooling module's
    # config) would read the module from wherever modules.json pointed, outside the checked folder
    folder = _copy(saved, "tag", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["embedder"]["fine_tuned"] = True
    (folder / "config.json").write_text(json.dumps(config))
    encoder = folder / "encoder"
    encoder.mkdir()
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": where, "type": "sentence_transformers.models.Pooling"}]
    (encoder / "modules.json").write_text(json.dumps(modules))
    (encoder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=r"names the module folder .* not a plain relative path inside"):
        TagClassifier.load(folder)


@pytest.mark.parametrize("kind", ["theme", "dedupe"])
def test_a_theme_model_or_index_that_does_not_exist_is_model_not_found(tmp_path, kind):
    # was: IntegrityError ("... is not a folder"), where TagClassifier.load says ModelNotFoundError (a
    # FileNotFoundError): a caller handling a missing model had to catch both
    from feedback_nlp.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no such folder"):
        _load(kind, tmp_path / "no-such-model")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(IntegrityError, match="is not a folder"):
        _load(kind, tmp_path / "afile")


def test_a_loaded_model_saved_again_keeps_what_its_card_said_until_a_refit(tmp_path):
    # was: a model loaded, set_params(min_confidence=...) and saved again lost the card's description and
    # training data ("Training data: Not recorded."), while its metrics were kept
    folder = TagClassifier(EMB, cv=2).fit(TEXTS, LABELS, holdout=0.3).save(
        tmp_path / "m", description="Tags Acme app reviews", training_data="2,400 reviews of 2025")
    clf = _load("tag", folder).set_params(min_confidence=0.3)
    card = (clf.save(tmp_path / "again") / "README.md").read_text()
    assert "Tags Acme app reviews" in card and "2,400 reviews of 2025" in card and "Measured on" in card
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert (config["description"], config["params"]["min_confidence"]) == ("Tags Acme app reviews", 0.3)
    assert "Acme" not in (clf.save(tmp_path / "cleared", description="") / "README.md").read_text()
    clf.fit(TEXTS, OTHER)  # another training: neither its words nor its figures describe the new weights
    card = (clf.save(tmp_path / "refit") / "README.md").read_text()
    assert "Acme" not in card and "2,400" not in card and "Training data\n\nNot recorded." in card
    assert "No evaluation was recorded" in card


@pytest.mark.parametrize("name", ["manifest.json", "config.json"])
def test_a_huge_manifest_or_config_is_refused_before_it_is_read(saved, tmp_path, name):
    # was: read whole into memory and parsed before the load could say anything (a 2 GB config.json took 2 GB);
    # now refused by its size. The padding is sparse: it takes no disk
    folder = _copy(saved, "tag", tmp_path)
    text = (folder / name).read_text()
    with open(folder / name, "w") as f:
        f.write(text)
        f.truncate(40 << 20)
    if name == "config.json":
        write_manifest(folder)
    with pytest.raises(IntegrityError, match=rf"{name} is 42 MB; a saved folder's {name} is at most 16 MiB"):
        _load("tag", folder)


def test_saving_into_the_current_folder_is_refused_with_a_reason(saved, tmp_path, monkeypatch):
    # a save replaces its folder whole: the current folder would be moved from under the process. Was (with the
    # whole-folder save): "folder exists, is not empty and is not a saved model" about an empty folder
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    clf = _load("tag", saved["tag"])
    for where in (".", empty, tmp_path):
        with pytest.raises(InvalidInputError, match="it is the current folder"):
            clf.save(where)
    assert list(empty.iterdir()) == []
    assert clf.save("model") == Path("model") and _load("tag", Path("model")).classes_.tolist() == ["bug", "feature"]


@pytest.mark.parametrize("labels", [["a\ud800"] * 6 + ["b"] * 6, [["a", "x\udc80"]] * 6 + [["b"]] * 6])
def test_a_tag_with_a_lone_surrogate_is_refused_by_fit_not_by_save(tmp_path, labels):
    # was: fit trained on it; save then failed with a bare UnicodeEncodeError writing config.json (after writing
    # weights.npz into the folder)
    with pytest.raises(InvalidInputError, match="hold lone surrogates"):
        TagClassifier(EMB, cv=2).fit(TEXTS[:12], labels)


@pytest.mark.parametrize("field", ["description", "training_data"])
def test_card_text_that_is_not_text_is_refused_before_anything_is_written(saved, tmp_path, field):
    # was: ["a", "b"] went onto the card as "['a', 'b']" and into config.json as a list
    with pytest.raises(InvalidInputError, match=f"{field} must be text"):
        _load("tag", saved["tag"]).save(tmp_path / "m", **{field: ["a", "b"]})
    assert not (tmp_path / "m").exists()


def _npy(shape, data: bytes = b"", dtype: str = "<f4") -> bytes:
    import io

    from numpy.lib import format as npy

    out = io.BytesIO()
    npy.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue() + data


def _replace_member(path: Path, name: str, payload: bytes, compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for member, data in members.items():
            z.writestr(member, payload if member == name else data,
                       compress_type=compression if member == name else zipfile.ZIP_STORED)


@pytest.mark.parametrize(("kind", "name", "member"), [("tag", "weights.npz", "coef_.npy"),
                                                      ("theme", "themes.npz", "embeddings.npy")])
def test_a_compressed_array_is_refused_before_it_is_expanded(saved, tmp_path, kind, name, member):
    # was: expanded whole: 1 MB of deflated zeros became 1 GB of memory (31 s) before a shape check refused it
    folder = _copy(saved, kind, tmp_path)
    _replace_member(folder / name, member, _npy((8 << 20,), bytes(32 << 20)), zipfile.ZIP_DEFLATED)
    assert (folder / name).stat().st_size < 1 << 20
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=rf"{member} is compressed; a save stores arrays uncompressed"):
        _load(kind, folder)


@pytest.mark.parametrize(("kind", "name", "member"), [("tag", "weights.npz", "coef_.npy"),
                                                      ("theme", "themes.npz", "centroids.npy"),
                                                      ("dedupe", "embeddings.npy", None)])
def test_an_array_header_declaring_more_than_its_bytes_is_refused(saved, tmp_path, kind, name, member):
    # was: a bare MemoryError ("Unable to allocate 3.64 TiB") from a 100-byte array
    folder = _copy(saved, kind, tmp_path)
    payload = _npy((10**12,), bytes(16))
    if member is None:
        (folder / name).write_bytes(payload)
    else:
        _replace_member(folder / name, member, payload)
    write_manifest(folder)
    with pytest.raises(IntegrityError, match=r"declares 4000000000000 bytes of float32 \(1000000000000,\) but holds 16"):
        _load(kind, folder)


def test_the_bundled_models_still_load_through_the_checked_reader():
    for name in ("request-type", "sentiment"):
        assert len(TagClassifier.load(name).classes_) >= 3
