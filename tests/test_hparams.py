"""``replay sweep --tensorboard DIR``: the sweep as a TensorBoard HParams experiment.

The files are read back three ways: by the project's own TFRecord reader (framing and
checksums), by the real ``tensorboard`` server through its HParams plugin's HTTP
endpoints (every setting a session, with its hyperparameters and metric values), and by
headless Chromium on the dashboard itself (the sessions table lists every setting). The
last two start processes on loopback ports and are marked slow; every process is
stopped in a ``finally`` and every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import error_line, f32, run, write_log

from analysis.reading.tb import parse_events, read_records
from replay.output import hparams

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs"
TENSORBOARD = Path(sys.executable).with_name("tensorboard")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@pytest.fixture
def log(tmp_path) -> Path:
    return write_log(tmp_path / "training.csv")


def sweep_to(tmp_path, *args) -> tuple[Path, list[dict]]:
    """Sweep with --tensorboard (and --out, for the records); return both."""
    tb, out = tmp_path / "tb", tmp_path / "out"
    result = run("sweep", *args, "--no-charts", "--out", out, "--tensorboard", tb)
    assert result.exit_code == 0, result.output
    records = json.loads((out / "results.json").read_text())
    assert f"wrote an HParams experiment of {len(records)} sessions to {tb}" in result.stderr
    return tb, records


def summaries(path: Path) -> list:
    """The summary values of one event file, read by the project's TFRecord reader."""
    return [v for e in parse_events(read_records(path)) for v in e.summary.value]


def expected_hparams(record: dict, several_runs: bool) -> dict:
    hp = {"run": record["run"]} if several_runs else {}
    hp["policy"] = record["policy"]
    hp.update({k: v for k, v in record["params"].items() if v is not None})
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in hp.items()}  # fmt: skip


def expected_metrics(record: dict, heldout: str) -> dict:
    values = {
        "epochs_trained": record.get("epochs_trained"),
        "stopped_epoch": record.get("stopped_epoch"),
        "kept_epoch": record.get("final_epoch"),
        heldout: (record.get("final_metrics") or {}).get(heldout),
        "regret": record.get("regret"),
        "final_lr": record.get("final_lr"),
    }
    return {k: f32(v) for k, v in values.items() if v is not None}


# ----------------------------------------------------------------------------------
# The files


def test_layout_one_folder_per_setting_and_readable_events(log, tmp_path):
    tb, records = sweep_to(tmp_path, log, "--patience", "1..2")
    sessions = sorted(p for p in tb.iterdir() if p.is_dir())
    assert [p.name for p in sessions] == [f"{i:04d}" for i in range(len(records))]
    (top,) = [p for p in tb.iterdir() if p.is_file()]
    assert top.name.endswith(hparams.SUFFIX)
    assert [v.tag for v in summaries(top)] == ["_hparams_/experiment"]
    tags = [v.tag for v in summaries(next(sessions[0].iterdir()))]
    assert tags[0] == "_hparams_/session_start_info"
    assert tags[-1] == "_hparams_/session_end_info"
    assert tags[1:-1] == ["epochs_trained", "stopped_epoch", "kept_epoch", "test_loss", "regret"]
    assert not list(tmp_path.glob(".tb.*"))  # no temporary folder left behind


def test_sessions_leave_out_none_values_and_name_runs_when_several(log, tmp_path):
    other = write_log(tmp_path / "short.csv", n=4)  # too short to stop: censored
    records = json.loads(run("sweep", log, other, "--patience", "3", "--format", "json",
                             "--policy", "early_stopping").stdout)  # fmt: skip
    got = list(hparams.sessions(records))
    assert len(got) == len(records)
    for s, rec in zip(got, records, strict=True):
        assert s.hparams["run"] == rec["run"]
        assert "baseline" not in s.hparams  # None: left out
        assert ("stopped_epoch" in s.metrics) == (rec["stopped_epoch"] is not None)
        assert s.trial_id.startswith(f"{s.name} {rec['run']} early_stopping patience=3")
    assert any(rec["stopped_epoch"] is None for rec in records)


def test_trial_ids_name_the_dialect_parameters_that_differ(log):
    """torch's ReduceLROnPlateau settings differing only in threshold_mode get names
    that say so (the table label alone leaves a dialect's own parameters out)."""
    records = json.loads(run("sweep", log, "--dialect", "torch", "--factor", "0.5",
                             "--lr-patience", "2", "--threshold-mode", "rel,abs",
                             "--format", "json").stdout)  # fmt: skip
    modes = [r["params"]["threshold_mode"] for r in records]
    assert sorted(modes) == ["abs", "rel"]
    ids = [s.trial_id for s in hparams.sessions(records)]
    assert [i.split()[-1] for i in ids] == [f"threshold_mode={m}" for m in modes]
    assert len({i.split(" ", 1)[1] for i in ids}) == len(ids)  # distinct without the number


# ----------------------------------------------------------------------------------
# Refusals: one line, exit 1, nothing written


def test_refuses_a_non_empty_dir_without_force(log, tmp_path):
    tb = tmp_path / "tb"
    tb.mkdir()
    (tb / "notes.txt").write_text("mine")
    result = run("sweep", log, "--format", "csv", "--tensorboard", tb)
    assert error_line(result) == (
        f"Error: --tensorboard {tb}: directory exists and is not empty; pass --force to "
        "replace the experiment written there, or choose another directory."
    )
    assert [p.name for p in tb.iterdir()] == ["notes.txt"]


def test_refuses_a_file(log, tmp_path):
    tb = tmp_path / "tb"
    tb.write_text("x")
    result = run("sweep", log, "--format", "csv", "--tensorboard", tb)
    assert error_line(result) == (
        f"Error: --tensorboard {tb}: exists and is not a directory; choose another path."
    )


def test_refuses_the_out_dir_itself(log, tmp_path):
    out = tmp_path / "out"
    result = run("sweep", log, "--no-charts", "--out", out, "--tensorboard", out)
    assert error_line(result).startswith(f"Error: --tensorboard {out}: holds the --out directory")
    assert not out.exists()


def test_refuses_too_many_sessions_before_any_work(log, tmp_path, monkeypatch):
    monkeypatch.setattr(hparams, "MAX_SESSIONS", 10)
    out, tb = tmp_path / "out", tmp_path / "tb"
    result = run("sweep", log, "--patience", "1..3", "--out", out, "--tensorboard", tb)
    assert error_line(result) == (
        "Error: --tensorboard: the sweep has 27 settings, more than the 10 sessions the "
        "HParams dashboard is written for (one folder each); narrow the grid (fewer values, "
        "one --policy) or leave out --tensorboard."
    )
    assert not out.exists() and not tb.exists()


def test_force_replaces_the_earlier_experiment_and_keeps_the_rest(log, tmp_path):
    tb, _ = sweep_to(tmp_path, log, "--patience", "1..3")
    assert len([p for p in tb.iterdir() if p.is_dir()]) == 27
    (tb / "notes.txt").write_text("mine")
    (tb / "0001" / "mine.txt").write_text("a file of mine in a session folder")
    result = run("sweep", log, "--patience", "1", "--policy", "early_stopping", "--format",
                 "csv", "--tensorboard", tb, "--force")  # fmt: skip
    assert error_line(result) == (
        f"Error: --tensorboard {tb}: 0001 was not written by --tensorboard and a session of "
        "this sweep would take its name; move it, or choose another directory."
    )
    assert result.stdout == ""  # refused before the sweep
    (tb / "0001" / "mine.txt").unlink()
    result = run("sweep", log, "--patience", "1", "--policy", "early_stopping", "--format",
                 "csv", "--tensorboard", tb, "--force")  # fmt: skip
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in tb.iterdir() if p.is_dir())
    assert folders == [f"{i:04d}" for i in range(6)]  # 3 min_delta x 2 restore
    assert (tb / "notes.txt").read_text() == "mine"
    assert len([p for p in tb.iterdir() if p.name.endswith(hparams.SUFFIX)]) == 1
    assert not list(tmp_path.glob(".tb.*"))


# ----------------------------------------------------------------------------------
# The real TensorBoard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tensorboard(logdir: Path, load_fast: str, tmp_path: Path, deadline: float = 90):
    """A ``tensorboard`` server on a free loopback port; yields its base URL."""
    port = free_port()
    log_path = tmp_path / f"tensorboard-{load_fast}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [str(TENSORBOARD), "--logdir", str(logdir), "--host", "127.0.0.1", "--port",
             str(port), f"--load_fast={load_fast}", "--reload_interval", "1"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + deadline
        while True:
            try:
                with urllib.request.urlopen(base + "/data/plugins_listing", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > end:
                    raise AssertionError(
                        f"tensorboard did not start: {log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def post(base: str, route: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/data/plugin/hparams/{route}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def loaded_groups(base: str, n: int, deadline: float = 90) -> list[dict]:
    """The session groups, once all ``n`` sessions and their metrics are loaded."""
    body = {"experimentName": "", "allowedStatuses": STATUSES, "startIndex": 0,
            "sliceSize": n + 100}  # fmt: skip
    end = time.monotonic() + deadline
    while True:
        groups = post(base, "session_groups", body).get("sessionGroups", [])
        if len(groups) == n and all(g["sessions"][0]["metricValues"] for g in groups):
            return groups
        assert time.monotonic() < end, f"{len(groups)} of {n} sessions loaded"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])  # data server (default) / Python
def test_tensorboard_serves_every_setting_as_a_session(tmp_path, load_fast):
    runs = [SAMPLE / "mnist-mlp", SAMPLE / "mnist-mlp-plateau"]
    tb, records = sweep_to(tmp_path, *runs, "--patience", "3..5",
                           "--policy", "early_stopping,reduce_lr_on_plateau")  # fmt: skip
    assert len(records) == 2 * (3 * 3 * 2 + 3 * 3)
    names = {r["run"] for r in records}
    with tensorboard(tb, load_fast, tmp_path) as base:
        groups = loaded_groups(base, len(records))
        experiment = post(base, "experiment", {"experimentName": ""})
    infos = {h["name"]: h for h in experiment["hparamInfos"]}
    assert infos["run"]["type"] == "DATA_TYPE_STRING"
    assert sorted(infos["run"]["domainDiscrete"]) == sorted(names)
    assert infos["patience"]["domainDiscrete"] == [3.0, 4.0, 5.0]
    assert infos["restore_best_weights"]["type"] == "DATA_TYPE_BOOL"
    metric_tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metric_tags == ["epochs_trained", "stopped_epoch", "kept_epoch", "test_loss",
                           "regret", "final_lr"]  # fmt: skip

    by_name = {g["name"]: g for g in groups}
    for i, (session, record) in enumerate(zip(hparams.sessions(records), records, strict=True)):
        group = by_name.pop(session.trial_id)
        assert group["sessions"][0]["name"] == f"{i:04d}"
        assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
        assert group["hparams"] == expected_hparams(record, several_runs=True)
        got = {m["name"]["tag"]: m["value"] for m in group["sessions"][0]["metricValues"]}
        assert got == expected_metrics(record, "test_loss"), session.trial_id
    assert not by_name


# ----------------------------------------------------------------------------------
# The dashboard, in headless Chromium


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: commands on its fd 3, replies on its fd 4, each a JSON
    message ending in a NUL byte); no port and no extra package."""

    def __init__(self, profile: Path) -> None:
        r_in, w_in = os.pipe()  # we write, it reads (its fd 3)
        r_out, w_out = os.pipe()  # it writes (its fd 4), we read

        def fds() -> None:  # in the child: its ends at 3 and 4, whatever numbers they had
            a, b = os.dup(r_in), os.dup(w_out)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1600,1200", "about:blank"],
            preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes too: killed as a group
        )  # fmt: skip
        os.close(r_in)
        os.close(w_out)
        self._w = os.fdopen(w_in, "wb", buffering=0)
        self._r = os.fdopen(r_out, "rb", buffering=0)
        self._buf, self._id = b"", 0

    def send(self, method: str, params: dict | None = None, session: str | None = None):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._w.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = self._r.read(1 << 16)
                assert chunk, "chromium closed its DevTools pipe"
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def close(self) -> None:
        for f in (self._w, self._r):
            with contextlib.suppress(OSError):
                f.close()
        # Chromium's helper processes (renderer, crashpad) outlive the browser process and
        # may still write to the profile: kill the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


# Walks shadow roots to the HParams table (a vaadin-grid, which renders only the rows in
# view), scrolls it from top to bottom and returns the text of every row and the header.
TABLE_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const deep = (root, sel, out = []) => {
    root.querySelectorAll(sel).forEach(e => out.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deep(e.shadowRoot, sel, out); });
    return out;
  };
  const grids = deep(document, 'tf-hparams-table-view')
    .map(v => v.shadowRoot && v.shadowRoot.querySelector('vaadin-grid'))
    .filter(g => g && g.size);
  if (!grids.length) return null;
  const grid = grids.reduce((a, b) => (b.size > a.size ? b : a));
  const text = td => {
    const slot = td.querySelector('slot');
    const nodes = slot ? slot.assignedNodes() : [];
    return nodes.length ? nodes[0].textContent.trim() : '';
  };
  const header = [...grid.shadowRoot.querySelectorAll('#header tr th')].map(text);
  const rows = {};
  for (let i = 0; i < grid.size; i += 3) {
    grid.scrollToIndex(i);
    await sleep(30);
    grid.shadowRoot.querySelectorAll('#items tr').forEach(tr => {
      if (tr.hidden) return;
      const cells = [...tr.querySelectorAll('td')].map(text);
      if (cells[0]) rows[cells[0]] = cells;
    });
  }
  return JSON.stringify({size: grid.size, header, rows});
})()
"""


def dashboard_table(base: str, profile: Path, n: int, deadline: float = 90) -> dict:
    browser = Chromium(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target,
                                                         "flatten": True})["sessionId"]  # fmt: skip
        browser.send("Page.navigate", {"url": f"{base}/#hparams"}, session)
        end = time.monotonic() + deadline
        while True:
            reply = browser.send("Runtime.evaluate", {"expression": TABLE_JS,
                                 "awaitPromise": True, "returnByValue": True}, session)  # fmt: skip
            value = reply["result"].get("value")
            table = json.loads(value) if value else None
            if table and table["size"] == n and len(table["rows"]) == n:
                return table
            assert time.monotonic() < end, f"the table never listed {n} sessions: {table}"
            time.sleep(1)
    finally:
        browser.close()


@pytest.mark.slow
def test_dashboard_sessions_table_lists_every_setting(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (`make test` installs Debian's chromium)")
    tb, records = sweep_to(tmp_path, SAMPLE / "mnist-mlp", "--patience", "3..10")
    n = len(records)
    assert n == 8 * 3 * 2 + 8 * 3
    with tensorboard(tb, "true", tmp_path) as base:
        loaded_groups(base, n)
        profile = tmp_path / "chromium-profile"  # left to pytest's tmp_path cleanup
        profile.mkdir()
        table = dashboard_table(base, profile, n)
    header = table["header"]
    assert header[0] == "Trial ID"
    assert {"patience", "min_delta", "policy", "regret"} <= set(header)
    column = {name: header.index(name) for name in ("patience", "min_delta", "policy")}
    for session, record in zip(hparams.sessions(records), records, strict=True):
        cells = table["rows"][session.trial_id]
        assert float(cells[column["patience"]]) == record["params"]["patience"]
        assert float(cells[column["min_delta"]]) == pytest.approx(record["params"]["min_delta"])
        assert cells[column["policy"]] == record["policy"]


# ----------------------------------------------------------------------------------
# Pruner sweeps over a study (issue 19): one session per pruner setting


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> str:
    """A real Optuna study (10 trials, 6 steps each, the median pruner pruning some)."""
    optuna = pytest.importorskip("optuna")
    from optuna_harness import small_study

    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'study.db'}"
    study = small_study(url)
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return url


def session_contents(folder: Path) -> tuple[dict, dict, str]:
    """One session's hyperparameters, metrics (step-0 float32 scalars) and trial id, read
    back from its event file by the project's TFRecord reader."""
    from google.protobuf import json_format
    from tensorboard.plugins.hparams import plugin_data_pb2

    (path,) = folder.iterdir()
    hp, metrics, group = {}, {}, None
    for v in summaries(path):
        if v.tag == "_hparams_/session_start_info":
            data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
            start = data.session_start_info
            hp = {k: json_format.MessageToDict(x) for k, x in start.hparams.items()}
            group = start.group_name
        elif not v.tag.startswith("_hparams_/"):
            assert list(v.tensor.tensor_shape.dim) == []  # a scalar
            metrics[v.tag] = v.tensor.float_val[0]
    return hp, metrics, group


def expected_pruner_metrics(record: dict) -> dict:
    known = record["best_known"]
    values = {
        "steps_trained": record["steps_trained"],
        "steps_saved_fraction": record["steps_saved_fraction"],
        "n_pruned": record["n_pruned"],
        "n_censored": len(record["censored"]),
        "best_known": float(known),
        "best_trial": record["best_trial"] if known else None,
        "best_value": record["best_value"] if known else None,
        "regret": record["regret"],
        "recorded_best_survives": record["recorded_best_survives"],
        "reproduces_recorded": float(record["reproduces_recorded"]),
    }
    return {k: f32(v) for k, v in values.items() if v is not None}


def test_pruner_sweep_one_session_per_setting_read_back(study_db, tmp_path):
    """`replay sweep STUDY --policy median_pruner ... --tensorboard DIR`: every setting a
    session (the pruner's parameters as hyperparameters, its outcome as metrics), the
    unknown values (regret, best of a setting with censored trials) left out."""
    tb, records = sweep_to(tmp_path, study_db, "--policy", "median_pruner,patient_pruner",
                           "--n-startup-trials", "0,2", "--n-warmup-steps", "1,5",
                           "--patience", "0,1")  # fmt: skip
    assert len(records) == 4 + 2
    folders = sorted(p for p in tb.iterdir() if p.is_dir())
    assert [p.name for p in folders] == [f"{i:04d}" for i in range(len(records))]
    censored = [r for r in records if r["censored"]]
    assert censored and any(not r["censored"] for r in records)  # both kinds checked
    for folder, record in zip(folders, records, strict=True):
        hp, metrics, group = session_contents(folder)
        want = {"policy": record["policy"]}
        want.update({k: v for k, v in record["params"].items() if v is not None})
        assert hp == {k: float(v) if isinstance(v, int) else v for k, v in want.items()}
        assert metrics == expected_pruner_metrics(record), record["setting"]
        assert group == f"{folder.name} {record['setting']}"
        if record["censored"]:
            assert not {"regret", "best_value", "best_trial"} & set(metrics)
            assert metrics["best_known"] == 0.0 and metrics["n_censored"] > 0
    (top,) = [p for p in tb.iterdir() if p.is_file()]
    from tensorboard.plugins.hparams import plugin_data_pb2

    (value,) = summaries(top)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        value.metadata.plugin_data.content
    ).experiment
    assert [m.name.tag for m in experiment.metric_infos] == [m for m, _, _ in
                                                            hparams.PRUNER_METRICS]  # fmt: skip
    infos = {h.name: h for h in experiment.hparam_infos}
    assert sorted(v.number_value for v in infos["n_startup_trials"].domain_discrete.values) == [
        0.0, 2.0]  # fmt: skip
    assert infos["n_startup_trials"].differs and not infos["interval_steps"].differs
    assert "wrapped" not in infos  # None for every patient_pruner setting: left out


def test_pruner_sweep_api_to_tensorboard_as_the_cli(study_db, tmp_path):
    """PrunerSweep.to_tensorboard writes what the CLI writes, and refuses as it does."""
    import replay

    answer = replay.sweep(study_db, policy="median_pruner", n_warmup_steps=[0, 5])
    tb = tmp_path / "api"
    assert answer.to_tensorboard(tb) == 2
    cli_tb, _ = sweep_to(tmp_path, study_db, "--policy", "median_pruner",
                         "--n-warmup-steps", "0,5")  # fmt: skip
    for name in ("0000", "0001"):
        assert session_contents(tb / name) == session_contents(cli_tb / name)
    from analysis.errors import ReplayError

    with pytest.raises(ReplayError, match="directory exists and is not empty; pass --force"):
        answer.to_tensorboard(tb)
    assert answer.to_tensorboard(tb, force=True) == 2


def test_pruner_sweep_refusals_before_any_work(study_db, tmp_path, monkeypatch):
    """The ordinary export's refusals: a non-empty folder without --force, the --out
    folder itself, more sessions than MAX_SESSIONS; one line, nothing written."""
    tb = tmp_path / "tb"
    tb.mkdir()
    (tb / "notes.txt").write_text("mine")
    args = ("sweep", study_db, "--policy", "median_pruner", "--n-startup-trials", "0..3")
    result = run(*args, "--format", "csv", "--tensorboard", tb)
    assert error_line(result) == (
        f"Error: --tensorboard {tb}: directory exists and is not empty; pass --force to "
        "replace the experiment written there, or choose another directory."
    )
    assert result.stdout == "" and [p.name for p in tb.iterdir()] == ["notes.txt"]
    out = tmp_path / "out"
    result = run(*args, "--no-charts", "--out", out, "--tensorboard", out)
    assert error_line(result).startswith(f"Error: --tensorboard {out}: holds the --out directory")
    assert not out.exists()
    monkeypatch.setattr(hparams, "MAX_SESSIONS", 3)
    result = run(*args, "--out", out, "--tensorboard", tmp_path / "tb2")
    assert error_line(result) == (
        "Error: --tensorboard: the sweep has 4 settings, more than the 3 sessions the "
        "HParams dashboard is written for (one folder each); narrow the grid (fewer values, "
        "one --policy) or leave out --tensorboard."
    )
    assert not out.exists() and not (tmp_path / "tb2").exists()
    result = run(*args, "--format", "csv", "--tensorboard", tb, "--force")
    assert error_line(result).startswith("Error: --tensorboard: the sweep has 4 settings")
    monkeypatch.setattr(hparams, "MAX_SESSIONS", 10)
    result = run(*args, "--format", "csv", "--tensorboard", tb, "--force")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tb.iterdir())
    assert names[:4] == ["0000", "0001", "0002", "0003"] and names[-1] == "notes.txt"
    assert len(names) == 6 and names[4].endswith(hparams.SUFFIX)
