"""The advisory cases (harness/catalogue/adv_*.py): each decide() on recorded observations,
the reply reading they share (_wire), their OSV records against the kept schema, the
claimed-vs-measured arithmetic of bench/advisories.py, and one advisory on one affected
and one fixed release with a real gunicorn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import advisories as bench
from harness.catalogue import (
    _wire,
    adv_cve_2018_1000164,
    adv_cve_2024_1135,
    adv_cve_2024_6827,
    adv_cve_2026_134820,
    adv_cve_2026_134821,
    adv_te_cl_2019,
)
from harness.host.rawhttp import Reply
from harness.model.results import Row
from harness.model.table import Deployment, Report, Table
from harness.model.verdict import Verdict
from harness.report.render import render
from harness.scenarios import registry
from harness.scenarios.base import Options
from harness.scenarios.case import load
from tests.conftest import run_json
from tests.osv_records import check

pytestmark = pytest.mark.pure

SMUGGLING = [adv_te_cl_2019, adv_cve_2024_1135, adv_cve_2024_6827, adv_cve_2026_134820]
CASES = [adv_cve_2018_1000164, *SMUGGLING, adv_cve_2026_134821]


def reply(status: int | None, body: bytes = b"", ended: str = "response", headers=()) -> Reply:
    line = f"HTTP/1.1 {status} X" if status else ""
    return Reply(ended, line, status, tuple(headers), body, body, "", 0.01)


def echo(body: bytes, path: str = "/echo") -> bytes:
    return f"path={path}\nbody={body.hex()}\n".encode()


def seen(outcome: str) -> dict:
    """A recorded reply by the outcome it showed."""
    replies = {
        "length": reply(200, echo(_wire.LENGTH_BODY)),
        "chunked": reply(200, echo(_wire.SMUGGLED)),
        "refused": reply(400, b"Invalid request"),
        "closed": reply(None, ended="closed"),
    }
    return _wire.seen(replies[outcome])


def obs(case, outcome: str, control: str = "chunked") -> dict:
    return {"control": seen(control), "vectors": {name: seen(outcome) for name in case.VECTORS}}


# -- every case is a usable scenario file with its ids and claims ------------------------------
@pytest.mark.local
@pytest.mark.parametrize("case", CASES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_each_case_loads_with_its_ids_and_claims(case):
    loaded = load(Path(case.__file__))
    assert loaded.osv_id == case.ID and list(loaded.aliases) == list(case.ALIASES)
    assert case.CLAIMED and all(lo for ranges in case.CLAIMED.values() for lo, _ in ranges)
    name = case.__name__.rsplit(".", 1)[-1].replace("_", "-")
    assert registry.cases()[name].path == Path(case.__file__)


def test_the_probe_bytes_frame_two_ways():
    assert _wire.CHUNKED.startswith(_wire.LENGTH_BODY)
    assert len(_wire.LENGTH_BODY) == 4  # what "Content-Length: 4" takes
    assert _wire.CHUNKED.endswith(b"\r\n0\r\n\r\n")
    for case in SMUGGLING:
        for data in case.VECTORS.values():
            head, body = data.split(b"\r\n\r\n", 1)
            assert b"Content-Length" in head and body in (_wire.CHUNKED, _wire.LENGTH_BODY)


# -- reading one reply --------------------------------------------------------------------------
def test_outcome_names_the_framing_the_server_chose():
    assert _wire.outcome(reply(200, echo(_wire.LENGTH_BODY))) == "length"
    assert _wire.outcome(reply(200, echo(_wire.SMUGGLED))) == "chunked"
    assert _wire.outcome(reply(400)) == _wire.outcome(reply(501)) == "refused"
    assert _wire.outcome(reply(None, ended="closed")) == "refused"
    assert _wire.outcome(reply(None, ended="timeout")) == "no answer (timeout)"
    assert _wire.outcome(reply(200, echo(b"xy"))) == "HTTP 200, body b'xy'"


# -- each decide on recorded observations (the outcomes of the real runs) ------------------------
def test_2019_fails_where_content_length_wins():
    case = adv_te_cl_2019
    assert case.decide(obs(case, "length"))[0] == "fail"  # 19.0.0 ... 19.9.0, 20.0.0
    assert case.decide(obs(case, "chunked"))[0] == "pass"  # 19.10.0, 20.0.2 ... 21.2.0
    assert case.decide(obs(case, "refused"))[0] == "pass"  # 22.0.0 on


def test_cve_2024_1135_fails_where_conflicting_codings_read_as_chunked():
    case = adv_cve_2024_1135
    verdict, evidence = case.decide(obs(case, "chunked"))
    assert verdict == "fail" and "read as chunked" in evidence
    assert case.decide(obs(case, "length"))[0] == "pass"  # the final coding honoured
    assert case.decide(obs(case, "refused"))[0] == "pass"


def test_cve_2024_6827_fails_on_te_cl():
    case = adv_cve_2024_6827
    assert case.decide(obs(case, "length"))[0] == "fail"
    assert case.decide(obs(case, "refused"))[0] == "pass"
    assert case.decide(obs(case, "chunked"))[0] == "pass"


def test_cve_2026_134820_passes_only_when_every_vector_is_refused():
    case = adv_cve_2026_134820
    assert case.decide(obs(case, "refused"))[0] == "pass"
    assert case.decide(obs(case, "closed"))[0] == "pass"
    mixed = obs(case, "refused")
    mixed["vectors"]["signed CL +4"] = seen("length")  # 26.1.0
    verdict, evidence = case.decide(mixed)
    assert verdict == "fail" and "signed CL +4: length" in evidence


@pytest.mark.parametrize("case", SMUGGLING, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_control_no_verdict(case):
    for control in ("refused", "length", "closed"):
        assert case.decide(obs(case, "length", control=control))[0] == "error"


def test_cve_2026_134821_fails_when_a_line_without_crlf_gets_no_answer():
    case = adv_cve_2026_134821
    timeout = _wire.seen(reply(None, ended="timeout"))
    refused = _wire.seen(reply(400))
    control = seen("chunked")
    names = list(case.VECTORS)
    both = {"control": control, "vectors": {n: timeout for n in names}}  # 25.2.0 ... 26.2.0
    verdict, evidence = case.decide(both)
    assert verdict == "fail" and "no answer (timeout)" in evidence
    one = {"control": control, "vectors": {names[0]: refused, names[1]: timeout}}  # 25.1.0
    assert case.decide(one)[0] == "fail"
    fixed = {"control": control, "vectors": {n: refused for n in names}}  # 27.0.0
    assert case.decide(fixed)[0] == "pass"
    assert case.decide({**fixed, "control": seen("refused")})[0] == "error"


def test_cve_2018_1000164_fails_on_an_injected_header():
    case = adv_cve_2018_1000164
    control = _wire.seen(reply(200, echo(b"", "/crlf"), headers=[("X-Echo", "plain")]))
    injected = _wire.seen(
        reply(200, echo(b"", "/crlf"), headers=[("X-Echo", "a"), ("X-Injected", "yes")])
    )
    verdict, evidence = case.decide({"control": control, "probe": injected})  # 19.4.5
    assert verdict == "fail" and "X-Injected: yes" in evidence
    closed = _wire.seen(reply(None, ended="closed"))  # 19.5.0: InvalidHeader, no answer
    assert case.decide({"control": control, "probe": closed})[0] == "pass"
    assert case.decide({"control": closed, "probe": closed})[0] == "error"


# -- the OSV record of an advisory case ---------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in registry.names() if n.startswith("adv-")])
def test_an_advisory_case_emits_a_valid_record_under_its_own_id(name, schema):  # noqa: F811
    about = registry.create(name, Options()).about()
    table = Table([Deployment("auto/unix", None, "unix")], targets=["21.2.0", "22.0.0"])
    table.put("21.2.0", "auto/unix", Row("21.2.0", Verdict.FAIL, "length"))
    table.put("22.0.0", "auto/unix", Row("22.0.0", Verdict.PASS, "refused"))
    rep = Report("python bisect.py 21.2.0,22.0.0", {}, "", table, about.record)
    record = json.loads(render(rep, "osv"))
    assert check(schema, record) == []
    assert record["id"] == about.record["id"] and record.get("aliases", []) == list(
        about.record.get("aliases", [])
    )
    assert record["affected"][0]["ranges"][0]["events"] == [
        {"introduced": "21.2.0"},
        {"fixed": "22.0.0"},
    ]
    assert any(r["type"] == "ADVISORY" for r in record["references"])


# -- claimed vs measured (bench/advisories.py) --------------------------------------------------
def rows(verdicts: dict[str, str]) -> list[dict]:
    return [{"target": t, "verdict": v, "detail": ""} for t, v in verdicts.items()]


def test_claims_against_measured_rows():
    snyk = [("0", "19.10.0"), ("20.0.0", "20.0.1")]
    assert bench.claimed(snyk, "19.9.0") and bench.claimed(snyk, "20.0.0")
    assert not bench.claimed(snyk, "19.10.0") and not bench.claimed(snyk, "20.0.2")
    measured = rows({"19.9.0": "pass", "19.10.0": "fail", "20.0.0": "pass", "21.2.0": "fail"})
    got = bench.compare([("0", "22.0.0")], measured)
    assert got["too_wide"] == ["19.9.0", "20.0.0"] and got["too_narrow"] == []
    assert bench.compare([("25.2.0", "27.0.0")], rows({"24.1.1": "fail"}))["too_narrow"] == [
        "24.1.1"
    ]
    assert bench.spans(measured) == [("19.10.0", "19.10.0"), ("21.2.0", "21.2.0")]
    assert bench.clamp("19.0.0..latest", {"since": "24.0.0"}) == "24.0.0..latest"
    assert bench.clamp("25.0.0..latest", {"since": "24.0.0"}) == "25.0.0..latest"


versions = [f"{major}.{minor}.0" for major in (19, 20, 21) for minor in range(4)]


@given(st.lists(st.sampled_from(["pass", "fail", "error"]), min_size=len(versions),
                max_size=len(versions)))  # fmt: skip
def test_a_claim_built_from_the_measured_spans_agrees(verdicts):
    measured = rows(dict(zip(versions, verdicts)))
    later = {v: versions[i + 1] if i + 1 < len(versions) else "" for i, v in enumerate(versions)}
    claim = [(a, later[b]) for a, b in bench.spans(measured)]
    got = bench.compare(claim, measured)
    decided = [r["target"] for r in measured if r["verdict"] != "error"]
    # a claim may only differ on an error row inside a span, which compare skips
    assert got["too_narrow"] == [] and got["too_wide"] == []
    assert sorted(got["agree"]) == sorted(decided)


def test_the_document_lists_every_case_and_every_unreproduced_advisory():
    metas = {name: bench.meta(path) for name, path in bench.cases().items()}
    doc = rows({"19.4.5": "fail", "19.5.0": "pass"})
    text = bench.markdown(metas, {"adv-cve-2018-1000164": {"rows": doc, "command": "x"}})
    for m in metas.values():
        assert m["id"].removeprefix("x_") in text
    for ident, _, _ in bench.UNREPRODUCED:
        assert ident in text
    assert "agrees" in text and "not run" in text
    picture = bench.svg(metas, {"adv-cve-2018-1000164": {"rows": doc}})
    assert picture.startswith("<svg") and picture.count("<rect") > len(metas)


# -- one advisory, one affected and one fixed release, real gunicorn ------------------------------
@pytest.mark.real
def test_cve_2018_1000164_on_19_4_5_and_19_5_0(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "19.4.5,19.5.0",
        "--no-commits",
        "--scenario",
        "adv-cve-2018-1000164",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    verdicts = {r["target"]: (r["verdict"], r["detail"]) for r in report["rows"]}
    assert verdicts["19.4.5"][0] == "fail" and "X-Injected: yes" in verdicts["19.4.5"][1]
    assert verdicts["19.5.0"][0] == "pass", verdicts


# -- every release ever: the releases before 19.0 -----------------------------------------------
PY27 = Path.home() / ".pyenv" / "versions" / "2.7.18" / "bin" / "python"


@pytest.mark.local
@pytest.mark.skipif(not PY27.is_file(), reason="no pyenv 2.7.18 here")
def test_a_27_environment_puts_its_site_and_shared_copies_first(tmp_path):
    import subprocess

    from harness.provision import environments
    from harness.provision.interpreters import Interpreter

    interp = Interpreter(str(PY27), "2.7.18", "pyenv")
    env = tmp_path / "env"
    environments._create_venv(interp, env)
    site = env / "lib" / "python2.7" / "site-packages"
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "marker_mod.py").write_text("X = 1\n")
    (site / environments.SHARED_PTH).write_text(f"{shared}\n")
    moved = env.rename(tmp_path / "final")  # built in a temporary directory, then renamed
    out = subprocess.run(
        [str(moved / "bin" / "python"), "-c", "import sys, marker_mod; print(sys.path[1])"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(moved / "lib" / "python2.7" / "site-packages")


@pytest.mark.real
@pytest.mark.skipif(not PY27.is_file(), reason="no pyenv 2.7.18 here")
def test_the_releases_before_19_boot_and_are_decided(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "0.17.0,17.5,18.0",
        "--no-commits",
        "--scenario",
        "adv-te-cl-2019",
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    rows = {r["target"]: r for r in report["rows"]}
    why = {t: (r["verdict"], r["python"], r["detail"]) for t, r in rows.items()}
    assert all(r["verdict"] in ("pass", "fail") for r in rows.values()), why
    assert rows["0.17.0"]["python"] == "2.7.18", why  # no Python 3 builds its parser
    assert all(rows[t]["python"].startswith("3.") for t in ("17.5", "18.0")), why


def test_socket_loss_says_it_needs_gthread_on_a_release_without_it():
    from harness.scenarios import socket_loss
    from harness.scenarios.recycle import Observation

    base = dict(booted=True, workers=3, recycles=3, probes_sent=20, probes_ok=20)
    old = socket_loss.decide(Observation(**base, worker_class="sync", gthread_expected=True))
    assert old.verdict is Verdict.ERROR and "no gthread worker" in old.detail  # 18.0, 0.17.0
    asked = socket_loss.decide(Observation(**base, worker_class="sync"))  # --worker-class sync
    assert asked.verdict is Verdict.PASS
    unnamed = socket_loss.decide(Observation(**base, gthread_expected=True))  # 0.12.0's log
    assert unnamed.verdict is Verdict.ERROR and "does not name" in unnamed.detail
    ran = socket_loss.decide(Observation(**base, worker_class="gthread", gthread_expected=True))
    assert ran.verdict is Verdict.PASS


def test_collapsed_names_runs_of_neighbours():
    order = ["19.9.0", "19.10.0", "20.0.0", "20.0.2", "20.0.3"]
    assert bench.collapsed(["20.0.3", "19.9.0", "20.0.2"], order) == "19.9.0, 20.0.2 ... 20.0.3"
    assert bench.collapsed([], order) == ""


RECORDS = sorted((Path(__file__).parents[1] / "results" / "advisories").glob("*.osv.json"))


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_every_kept_advisory_record_validates_under_its_own_id(path, schema):  # noqa: F811
    record = json.loads(path.read_text())
    assert check(schema, record) == []
    assert not record["id"].startswith("x_gunicorn-bisect")  # the advisory's id, not ours
    assert record["affected"][0]["ranges"], "no measured range"
