"""The benchmarks' harness (bench/harness): the arithmetic behind the reported figures.

bench/ is a folder of scripts, not a package: its scripts import ``harness`` from beside
them, so the tests put bench/ on the path the same way (last, so that it shadows nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from dinegraph.resolvers.ids import decode_id
from dinegraph.wechatpay_wiring import wechatpay_config

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import run_all  # noqa: E402
from harness import cpu, gqlws, http, ids, report, runs, stats  # noqa: E402
from harness.database import Demo, loopback_url_problem, production_env  # noqa: E402

# --- stats -----------------------------------------------------------------------------------


def test_percentile_is_the_nearest_rank_the_recorded_figures_used() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == 50.0
    assert stats.percentile(values, 90) == 90.0
    # round(99.5) is 100: halves go to the even rank, as in every figure of BENCHMARKS.md.
    assert stats.percentile(values, 99) == 100.0
    assert stats.percentile(values[:99], 99) == 99.0  # ceil(98.01), as the textbook says
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile([7.0], 99) == 7.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_pct_ms_sorts_and_reports_milliseconds_or_none() -> None:
    assert stats.pct_ms([0.003, 0.001, 0.002], 50) == 2.0
    assert stats.pct_ms([], 99) is None
    assert stats.ms(0.0123456) == 12.35
    assert stats.mb(2048) == 2.0
    assert stats.mb(None) is None


def test_latency_figures_of_nothing_are_none() -> None:
    assert stats.latency_figures([]) == {"p50_ms": None, "p99_ms": None, "max_ms": None}
    figures = stats.latency_figures([0.003, 0.001, 0.002])
    assert figures == {"p50_ms": 2.0, "p99_ms": 3.0, "max_ms": 3.0}


def test_ratio_is_none_without_a_divisor() -> None:
    assert stats.ratio(1.0, 3.0) == 0.333
    assert stats.ratio(1.0, 3.0, 2) == 0.33
    assert stats.ratio(0.0, 2.0) == 0.0
    assert stats.ratio(1.0, 0.0) is None
    assert stats.ratio(None, 2.0) is None
    assert stats.ratio(1.0, None) is None


def test_split_shares_a_total_evenly_larger_shares_first() -> None:
    assert stats.split(10, 3) == [4, 3, 3]
    assert stats.split(2, 4) == [1, 1, 0, 0]
    assert sum(stats.split(1999, 7)) == 1999


# --- the JSON line and the revision ----------------------------------------------------------


def test_json_line_is_one_compact_utf8_line() -> None:
    line = report.json_line({"scenario": "券", "ok": True, "n": None})
    assert line == '{"scenario":"券","ok":true,"n":null}'
    assert "\n" not in report.json_line({"text": "a\nb"})


def test_emit_prints_one_line_per_result(capsys: pytest.CaptureFixture[str]) -> None:
    report.emit({"a": 1})
    report.emit({"b": [1, 2]})
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line) for line in lines] == [{"a": 1}, {"b": [1, 2]}]


def test_revision_label_marks_uncommitted_changes() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    clean = report.Revision(commit, False, Path("."))
    assert clean.label() == "0123456"
    assert clean.as_dict() == {"commit": "0123456789ab", "uncommitted_changes": False}
    assert report.Revision(commit, True, Path(".")).label() == "0123456+dirty"
    unknown = report.Revision(None, None, Path("."))
    assert unknown.label() is None
    assert unknown.as_dict() == {"commit": None, "uncommitted_changes": None}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_product_revision_sees_uncommitted_product_code_only(tmp_path: Path) -> None:
    _git(tmp_path, "init", "--quiet")
    (tmp_path / "dinegraph").mkdir()
    (tmp_path / "dinegraph" / "app.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("hello\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "--quiet", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")

    clean = report.product_revision(tmp_path)
    assert (clean.commit, clean.dirty) == (head, False)

    (tmp_path / "README.md").write_text("changed, but not the product\n")
    assert report.product_revision(tmp_path).dirty is False

    (tmp_path / "dinegraph" / "app.py").write_text("x = 2\n")
    assert report.product_revision(tmp_path).dirty is True


def test_product_revision_outside_git_is_unknown(tmp_path: Path) -> None:
    revision = report.product_revision(tmp_path)
    assert (revision.commit, revision.dirty, revision.label()) == (None, None, None)


# --- CPU arithmetic --------------------------------------------------------------------------

# user nice system idle iowait irq softirq steal guest guest_nice
STAT_BEFORE = "cpu  100 0 50 800 50 0 0 10 0 0\ncpu0 1 2 3 4\n"
STAT_AFTER = "cpu  250 0 100 1000 50 0 0 40 0 0\n"


def test_machine_stat_counts_idle_and_iowait_as_not_busy() -> None:
    stat = cpu.parse_machine_stat(STAT_BEFORE)
    assert stat == cpu.MachineStat(busy=160, total=1010, steal=10)
    assert cpu.parse_machine_stat("cpu  x y z\n") is None
    assert cpu.parse_machine_stat("cpu 1 2\n") is None


def test_busy_and_steal_shares_between_two_readings() -> None:
    before, after = cpu.parse_machine_stat(STAT_BEFORE), cpu.parse_machine_stat(STAT_AFTER)
    # 430 jiffies passed, 230 of them busy (30 of those stolen by the hypervisor).
    assert cpu.busy_share(before, after) == pytest.approx(230 / 430)
    assert cpu.steal_share(before, after) == pytest.approx(30 / 430)
    assert cpu.busy_share(after, before) is None
    assert cpu.busy_share(None, after) is None


def test_pid_times_are_read_after_a_command_name_with_spaces_and_parentheses() -> None:
    fields = " ".join(["S", *(str(n) for n in range(1, 11)), "7", "5", "3", "2", "20", "0"])
    text = f"4242 (my (odd) server) {fields}\n"
    assert cpu.parse_pid_times(text) == (7, 5, 3, 2)


def test_other_cpu_is_the_machines_busy_time_less_what_is_known() -> None:
    # Half of 2 cores over 10 s is 10 CPU seconds; 6 of them are known.
    assert cpu.other_cpu_s(0.5, 10.0, 6.0, cores_=2) == pytest.approx(4.0)
    # Steal is the hypervisor's, not other work on this machine.
    assert cpu.other_cpu_s(0.5, 10.0, 6.0, steal=0.1, cores_=2) == pytest.approx(2.0)
    # Measurement jitter never makes it negative.
    assert cpu.other_cpu_s(0.1, 10.0, 6.0, cores_=2) == 0.0
    assert cpu.other_cpu_s(None, 10.0, 6.0) is None


def test_pct_of_core_and_busy_pct_round_to_a_tenth() -> None:
    assert cpu.pct_of_core(1.5, 2.0) == 75.0
    assert cpu.pct_of_core(None, 2.0) is None
    assert cpu.busy_pct(0.12345) == 12.3
    assert cpu.busy_pct(None) is None


def test_usage_between_snapshots_adds_up_what_is_known() -> None:
    before = cpu.CpuSnapshot(1.0, cpu.parse_machine_stat(STAT_BEFORE), (10.0, None), 3.0)
    after = cpu.CpuSnapshot(1.5, cpu.parse_machine_stat(STAT_AFTER), (12.0, 4.0), 3.5)
    used = cpu.usage(before, after)
    assert used.client_s == pytest.approx(0.5)
    assert used.servers_s[0] == pytest.approx(2.0)
    assert used.servers_s[1] is None  # gone, or not readable, at the start
    assert used.server_s == pytest.approx(2.0)
    assert used.database_s == pytest.approx(0.5)
    assert used.known_s() == pytest.approx(3.0)
    expected = cpu.other_cpu_s(used.machine_busy, 4.0, 3.0 + 0.25)
    assert used.other_s(4.0, extra_known_s=0.25) == pytest.approx(expected)
    without_steal = cpu.other_cpu_s(used.machine_busy, 4.0, 3.0, steal=used.steal)
    assert used.other_s(4.0, without_steal=True) == pytest.approx(without_steal)


def test_usage_without_database_processes_has_no_database_figure() -> None:
    before = cpu.CpuSnapshot(0.0, None, (), None)
    after = cpu.CpuSnapshot(1.0, None, (), None)
    used = cpu.usage(before, after)
    assert (used.database_s, used.server_s, used.machine_busy) == (None, None, None)
    assert used.other_s(1.0) is None


def test_snapshot_reads_this_process() -> None:
    first = cpu.snapshot()
    assert first.servers_s == () and first.database_s is None
    assert cpu.usage(first, cpu.snapshot()).client_s >= 0.0


# --- repeating a disturbed measurement -------------------------------------------------------


async def test_a_quiet_measurement_is_made_once() -> None:
    made: list[int] = []

    async def measure(attempt: int) -> dict[str, float]:
        made.append(attempt)
        return {"other": 5.0}

    best, attempts = await runs.least_disturbed(
        measure, retries=3, other_pct=lambda r: r["other"], label="t"
    )
    assert (made, attempts, best) == ([1], 1, {"other": 5.0})


async def test_a_disturbed_measurement_is_made_again_and_the_least_disturbed_kept() -> None:
    others = iter([80.0, 40.0, 60.0])
    between: list[str] = []

    async def measure(attempt: int) -> tuple[int, float]:
        return attempt, next(others)

    async def pause() -> None:
        between.append("quiet")

    best, attempts = await runs.least_disturbed(
        measure, retries=2, other_pct=lambda r: r[1], label="t", between=pause
    )
    assert (best, attempts) == ((2, 40.0), 3)
    assert between == ["quiet", "quiet"]


async def test_a_wrong_answer_ends_the_attempts_and_is_reported_as_it_is() -> None:
    async def measure(attempt: int) -> dict[str, object]:
        return {"attempt": attempt, "other": 90.0, "consistent": attempt != 2}

    best, attempts = await runs.least_disturbed(
        measure,
        retries=5,
        other_pct=lambda r: float(str(r["other"])),
        wrong=lambda r: not r["consistent"],
        label="t",
    )
    assert (best["attempt"], attempts) == (2, 2)


def test_wrong_answers_name_what_cannot_be_trusted() -> None:
    good = {"consistent": True, "problems": [], "errors": 0, "oversold_units": 0}
    assert runs.wrong_answers("hot/graphql", good, oversold="oversold_units") == []
    bad = {"consistent": False, "problems": ["x"], "errors": 2, "oversold_units": 3}
    found = runs.wrong_answers("hot/graphql", bad, oversold="oversold_units")
    assert len(found) == 3 and all(f.startswith("hot/graphql: ") for f in found)
    assert "OVERSOLD by 3" in found[0]
    assert runs.server_failures({"server_log_problems": []}) == []
    assert runs.server_failures({"server_log_problems": ["Traceback"]})


# --- clients and URLs ------------------------------------------------------------------------


def test_statement_count_reads_server_timing_as_text_or_bytes() -> None:
    assert http.statement_count('db;desc="6 statements", app;dur=3') == 6
    head = b'HTTP/1.1 200 OK\r\nserver-timing: db;desc="12 statements"\r\n\r\n'
    assert http.statement_count(head) == 12
    assert http.statement_count(None) is None
    assert http.statement_count("app;dur=3") is None


def test_a_lean_request_carries_its_headers_and_length() -> None:
    connection = http.LeanConnection("127.0.0.1", 8000, {"x-api-key": "k"})
    body = http.graphql_body("{ ok }", {"a": 1}, "Q")
    request = connection.request("/graphql", body, {"authorization": "Bearer t"})
    head, _, sent = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /graphql HTTP/1.1"
    assert {b"x-api-key: k", b"authorization: Bearer t", b"Host: 127.0.0.1:8000"} <= set(lines)
    assert f"content-length: {len(body)}".encode() in lines
    assert orjson.loads(sent) == {"query": "{ ok }", "operationName": "Q", "variables": {"a": 1}}


def test_only_loopback_servers_are_loaded() -> None:
    postgres = frozenset({"postgresql"})
    assert loopback_url_problem("postgresql+asyncpg://u@127.0.0.1:5432/x", postgres) is None
    assert loopback_url_problem("postgresql+asyncpg://u@localhost/x", postgres) is None
    assert loopback_url_problem("postgresql+asyncpg://u@10.0.0.5/x", postgres)
    assert loopback_url_problem("sqlite+aiosqlite:///x.db", postgres)
    assert loopback_url_problem("redis://127.0.0.1:6379/0", frozenset({"redis"})) is None


def test_servers_run_in_production_with_fresh_keys_and_real_adapters(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    demo = Demo("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}", env)
    settings = demo.settings()
    settings.check_servable()  # what ``dinegraph serve`` checks before it starts
    assert settings.production
    assert settings.development_adapters() == {}
    config = wechatpay_config(settings)
    assert config is not None and config.appid == settings.wechat_appid
    assert settings.wechatpay_private_key_path is not None
    assert settings.wechatpay_private_key_path.parent == tmp_path
    # Every adapter is aimed at a closed loopback port, never at the providers.
    for url in (settings.wechat_api_base, settings.tencent_sms_endpoint, config.base_url):
        assert url == "http://127.0.0.1:9"
    # The settings minting tokens and writing rows here are the servers': the same keys.
    assert settings.signing_key == env["DINEGRAPH_SECRET_KEY"]
    assert settings.personal_data_keys[0][0] == "bench"
    other = tmp_path / "other"
    other.mkdir()
    again = production_env(other)
    assert again["DINEGRAPH_DATA_KEYS"] != env["DINEGRAPH_DATA_KEYS"]
    assert again["DINEGRAPH_BLIND_INDEX_KEY"] != env["DINEGRAPH_BLIND_INDEX_KEY"]
    assert again["DINEGRAPH_WECHATPAY_APIV3_KEY"] != env["DINEGRAPH_WECHATPAY_APIV3_KEY"]


def test_global_ids_are_what_the_product_decodes() -> None:
    assert ids.global_id("Store", 1) == "U3RvcmU6MQ=="
    assert decode_id(ids.global_id("Sku", 42), "Sku", ["id"]) == 42


def test_graphql_ws_messages() -> None:
    sub = orjson.loads(gqlws.subscribe_message("1", "subscription { x }", {"a": 1}))
    assert sub == {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": "subscription { x }", "variables": {"a": 1}},
    }
    pushed = orjson.loads(gqlws.next_message("7", "x", {"v": 2}))
    assert pushed == {"id": "7", "type": "next", "payload": {"data": {"x": {"v": 2}}}}
    assert orjson.loads(gqlws.init_message()) == {"type": "connection_init", "payload": {}}


# --- the runner --------------------------------------------------------------------------------


def test_make_bench_all_runs_every_scenario_in_bench() -> None:
    scripts = {p.stem for p in BENCH.glob("*.py")}
    floors = {name for name in scripts if name.endswith("_floor")}
    assert {s.name for s in run_all.SCENARIOS} == scripts - floors - {"run_all"}


def test_postgresql_runs_follow_the_sqlite_ones_for_scenarios_with_a_database() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    redis = "redis://127.0.0.1:6379/0"
    scenarios = run_all.SCENARIOS
    sqlite_only = run_all.commands(scenarios, database_url=None, redis_url=redis, smoke=False)
    assert [label.split()[0] for label, _ in sqlite_only] == [s.name for s in scenarios]
    assert not any(label.endswith("(postgresql)") for label, _ in sqlite_only)
    assert all(len(argv) == 1 for _, argv in sqlite_only)

    both = run_all.commands(scenarios, database_url=url, redis_url=redis, smoke=True)
    assert [argv for _, argv in both[: len(scenarios)]] == [
        [str(BENCH / f"{s.name}.py"), *s.smoke.split()] for s in scenarios
    ]
    postgres = [(label, argv) for label, argv in both if label.endswith("(postgresql)")]
    assert [label.split()[0] for label, _ in postgres] == [
        name
        for s in scenarios
        if s.database
        for name in ([s.name, s.name] if s.postgres_also else [s.name])
    ]
    # The flash sale also runs as two processes on PostgreSQL, after its one-process run.
    flash = [argv for label, argv in postgres if label.startswith("flash_sale")]
    assert [argv[-2:] for argv in flash][1] == ["--processes", "2"]
    assert "--processes" not in flash[0]
    for label, argv in postgres:
        assert argv[argv.index("--database-url") + 1] == url
        assert ("--redis-url" in argv) == label.startswith("stock_fanout")


# --- the collector probe ---------------------------------------------------------------------


def test_gc_probe_writes_a_serving_process_collector_totals(tmp_path: Path) -> None:
    """bench/gc_probe times the collector of a process whose arguments name ``serve`` only:
    the scenario and its floors run without it."""
    script = "import gc, time\nfor _ in range(3):\n    gc.collect()\ntime.sleep(1.5)\n"
    env = {
        "PYTHONPATH": str(BENCH / "gc_probe"),
        "BENCH_GC_PROBE_DIR": str(tmp_path),
        "BENCH_GC_PROBE_SECONDS": "0.2",
    }
    for argv in (["serve"], ["floor"]):
        subprocess.run([sys.executable, "-c", script, *argv], env=env, check=True, timeout=60)
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    fields = dict(field.split("=", 1) for field in files[0].read_text().splitlines()[-1].split())
    collections = [int(n) for n in fields["collections"].split(",")]
    assert collections[2] >= 3  # the three full collections the script asked for
    assert all(float(s) >= 0 for s in fields["gc_s"].split(","))
    assert len(fields["threshold"].split(",")) == 3
    assert int(fields["frozen"]) == 0
