"""A fleet of specs: one broken spec breaks only its own pipeline, validate-spec says what parsing would say,
the generated DAG files stay in step with the spec folder, and nothing heavy is imported."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import banned_imports, spec_dagbag

from airflow_mlops.pipeline.fleet import compile_stubs
from airflow_mlops.pipeline.spec import parse_spec
from airflow_mlops.tools.cli import main as cli

ROOT = Path(__file__).resolve().parents[3]
# A spec with training.executor: kubernetes builds a KubernetesPodOperator, whose provider imports the
# kubernetes client: every other banned module stays out.
HEAVY = [m for m in banned_imports() if m != "kubernetes"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "benchmarks" / "fleet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spec_text(i: int, **changes) -> str:
    raw = _bench().varied_spec(i)
    for path, value in changes.items():
        node = raw
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return yaml.safe_dump(raw, sort_keys=False)


# Broken specs of several kinds, each with the problem line that must name it.
BROKEN = {
    "team_x/syntax.yaml": ("name: syntax_err\nmodel: [unclosed\n", "(YAML syntax) at line 3"),
    "team_x/copycat.yaml": (_spec_text(1), "name: found 'fleet_0001', which "),
    "team_y/bad_cron.yaml": (
        _spec_text(90, schedules__training="61 25 * * *"),
        "schedules.training: found '61 25 * * *'; allowed: a cron expression Airflow accepts",
    ),
    "team_y/bad_params.yaml": (
        _spec_text(91, model={"kind": "tabular", "params": {"epochs": "ten", "hidden_unit": [8]}}),
        "model.params.epochs: found 'ten'; allowed: an integer",
    ),
    "team_y/typo.yaml": (
        _spec_text(92, model={"kind": "tabular", "params": {"hidden_unit": [8]}}),
        "model.params.hidden_unit: unknown key (did you mean 'hidden_units'?)",
    ),
    "team_z/twice.yaml": (
        _spec_text(96) + "model: {kind: tabular}\n",
        "(YAML syntax) at line ",  # ... "key 'model' appears twice (first at line N)"
    ),
    "team_z/empty.yaml": ("", "(top level): the file is empty"),
    "team_z/bad_target.yaml": (
        _spec_text(95, target="age"),
        "target: found 'age'; allowed: a column that is not",
    ),
}
N_VALID = 24  # every shape: regression, LoRA, approval, search, Kubernetes pods, with/without scoring


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    bench = _bench()
    specs = tmp_path / "specs"
    for i in range(N_VALID):
        raw = bench.varied_spec(i)
        path = specs / f"team_{i % 4}" / f"{raw['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    for rel, (text, _) in BROKEN.items():
        (specs / rel).parent.mkdir(parents=True, exist_ok=True)
        (specs / rel).write_text(text)
    return specs


def _valid_dag_ids(specs: Path) -> set[str]:
    ids: set[str] = set()
    for path in specs.rglob("*.yaml"):
        rel = path.relative_to(specs).as_posix()
        if rel not in BROKEN:
            ids |= set(parse_spec(yaml.safe_load(path.read_text()), rel).dag_ids)
    return ids


def test_a_broken_spec_breaks_only_its_own_pipeline(fleet, tmp_path):
    bag = spec_dagbag(f"fleet-{tmp_path.name}", fleet)
    expected = _valid_dag_ids(fleet)
    assert len(expected) > 5 * N_VALID - 10
    assert set(bag.dag_ids) == expected  # every valid pipeline keeps all its DAGs
    errors = {Path(k).as_posix(): v for k, v in bag.import_errors.items()}
    assert sorted(errors) == sorted(
        rel.replace(".yaml", ".py") for rel in BROKEN
    )  # one error per broken file
    for rel, (_, line) in BROKEN.items():
        message = errors[rel.replace(".yaml", ".py")]
        assert f"invalid pipeline spec {rel}:" in message  # names the spec file...
        assert line in message  # ...the key, what was found and what is allowed


def test_validate_spec_rejects_what_parsing_rejects_with_the_same_words(fleet, tmp_path, capsys):
    bag = spec_dagbag(f"fleet-{tmp_path.name}", fleet)
    capsys.readouterr()  # the parse's own log lines
    assert cli(["validate-spec", "--format", "json", str(fleet)]) == 1
    report = json.loads(capsys.readouterr().out)
    by_file = {Path(f["file"]).relative_to(fleet).as_posix(): f for f in report["files"]}
    assert report["ok"] is False
    assert {rel for rel, f in by_file.items() if not f["ok"]} == set(BROKEN)
    assert sum(len(f["dag_ids"]) for f in by_file.values()) == len(bag.dag_ids)
    for rel, (_, line) in BROKEN.items():
        problems = by_file[rel]["problems"]
        assert any(line in p for p in problems), problems
        import_error = bag.import_errors[rel.replace(".yaml", ".py")]
        for p in problems:  # parse time says the same, up to how the two name the spec folder
            assert p.replace(f"{fleet}/", "") in import_error


def test_validate_spec_exit_codes_and_text(fleet, tmp_path, capsys):
    good = fleet / "team_0" / "fleet_0000.yaml"
    assert cli(["validate-spec", str(good)]) == 0
    assert f"{good}: ok (fleet_0000__train" in capsys.readouterr().out
    assert cli(["validate-spec", str(tmp_path / "nowhere")]) == 2
    assert cli(["validate-spec", str(fleet / "team_y" / "bad_params.yaml")]) == 1
    err = capsys.readouterr().err
    assert "model.params.epochs: found 'ten'; allowed: an integer" in err
    assert "0 valid, 1 invalid" in err


def test_validate_spec_warns_of_an_improvement_no_model_can_reach_and_names_non_inferiority(tmp_path, capsys):
    """Valid, but never promotable: the thresholds ask a champion for accuracy 0.998, and a challenger must beat
    it by 0.01. validate-spec says so (exit 0: a warning), in text and JSON; non_inferiority is no warning."""
    raw = yaml.safe_load((ROOT / "tests" / "dag_bundle" / "models" / "multi_plan.yaml").read_text())
    raw["tests"]["thresholds"]["accuracy"] = {"min": 0.998}
    raw["tests"]["compare"].update(mode="improvement", min_improvement=0.01)
    stuck = tmp_path / "stuck.yaml"
    stuck.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert cli(["validate-spec", str(stuck)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {stuck}: tests.compare: accuracy is at most 1" in err
    assert "at least 1.008, which no model reaches. Use mode: non_inferiority" in err
    assert cli(["validate-spec", "--format", "json", str(stuck)]) == 0
    (report,) = json.loads(capsys.readouterr().out)["files"]
    assert report["ok"]
    assert len(report["warnings"]) == 1
    raw["tests"]["compare"]["min_improvement"] = "1%"  # relative: 0.998 * 1.01
    (warning,) = parse_spec(raw).warnings()
    assert "a challenger must then beat it by 1%, at least 1.008, which no model reaches" in warning
    raw["tests"]["compare"]["mode"] = "non_inferiority"
    assert parse_spec(raw).warnings() == []


def test_a_copied_name_never_takes_the_dags_of_the_pipeline_that_had_them(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    (specs / "b_team").mkdir(parents=True)
    (specs / "b_team" / "churn.yaml").write_text(_spec_text(0, name="churn"))
    compile_stubs(specs, out)
    (specs / "a_team").mkdir()
    (specs / "a_team" / "churn.yaml").write_text(_spec_text(3, name="churn"))  # sorts first, came later
    compile_stubs(specs, out)
    assert "compile_spec(" in (out / "b_team" / "churn.py").read_text()
    assert "duplicate_name(" in (out / "a_team" / "churn.py").read_text()
    # with no history (a fresh folder), the first file in path order owns the name
    compile_stubs(specs, tmp_path / "fresh")
    assert "compile_spec(" in (tmp_path / "fresh" / "a_team" / "churn.py").read_text()
    # the owner goes: the copy, itself unchanged, now compiles
    (specs / "b_team" / "churn.yaml").unlink()
    compile_stubs(specs, out)
    assert "compile_spec(" in (out / "a_team" / "churn.py").read_text()
    assert not (out / "b_team").exists()


def test_validate_spec_blames_the_file_the_running_bundle_blames(tmp_path, capsys):
    """One ownership rule: with --deployed (the bundle's manifest) validate-spec fails the newcomer that
    copied a running pipeline's name, as the bundle refuses it, never the file that had the name."""
    from airflow_mlops.tools.cli import main as cli

    specs, out = tmp_path / "specs", tmp_path / "out"
    (specs / "b_team").mkdir(parents=True)
    (specs / "b_team" / "churn.yaml").write_text(_spec_text(0, name="churn"))
    compile_stubs(specs, out)  # deployed: b_team owns churn
    (specs / "a_team").mkdir()
    (specs / "a_team" / "churn.yaml").write_text(_spec_text(3, name="churn"))  # sorts first, came later
    compile_stubs(specs, out)
    assert "duplicate_name(" in (out / "a_team" / "churn.py").read_text()  # the bundle refuses the newcomer
    capsys.readouterr()
    assert cli(["validate-spec", "--format", "json", "--deployed", str(out), str(specs)]) == 1
    files = {f["file"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    newcomer, owner = files[str(specs / "a_team" / "churn.yaml")], files[str(specs / "b_team" / "churn.yaml")]
    assert (newcomer["ok"], owner["ok"]) == (False, True)
    assert newcomer["problems"] == [
        f"name: found 'churn', which {specs / 'b_team' / 'churn.yaml'} already uses; allowed: a name no other "
        "spec uses (rename this pipeline, or delete one of the two files)"
    ]
    # a fresh deployment (no manifest): the first file in path order owns the name, in both
    assert cli(["validate-spec", "--format", "json", str(specs)]) == 1
    files = {f["file"]: f["ok"] for f in json.loads(capsys.readouterr().out)["files"]}
    assert files == {str(specs / "a_team" / "churn.yaml"): True, str(specs / "b_team" / "churn.yaml"): False}
    compile_stubs(specs, tmp_path / "fresh")
    assert "duplicate_name(" in (tmp_path / "fresh" / "b_team" / "churn.py").read_text()
    # a manifest that is not there is a usage error, not a verdict
    assert cli(["validate-spec", "--deployed", str(tmp_path / "nowhere"), str(specs)]) == 2
    assert "no deployed manifest at" in capsys.readouterr().err


def test_a_missing_spec_folder_removes_nothing(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    specs.mkdir()
    (specs / "one.yaml").write_text(_spec_text(0, name="one"))
    compile_stubs(specs, out)
    specs.rename(tmp_path / "unmounted")
    with pytest.raises(FileNotFoundError, match="the generated DAG files are left as they are"):
        compile_stubs(specs, out)
    assert (out / "one.py").exists()


def test_generated_files_follow_the_spec_folder(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    specs.mkdir()
    (specs / "one.yaml").write_text(_spec_text(0, name="one"))
    (specs / "two.yaml").write_text(_spec_text(4, name="two"))
    assert compile_stubs(specs, out) == {"specs": 2, "written": 2, "removed": 0}
    before = (out / "one.py").stat().st_mtime_ns
    (specs / "two.yaml").unlink()
    assert compile_stubs(specs, out) == {"specs": 1, "written": 0, "removed": 1}
    assert not (out / "two.py").exists()
    assert (out / "one.py").stat().st_mtime_ns == before  # unchanged spec, untouched file
    (specs / "one.yaml").write_text(_spec_text(0, name="one", description="edited"))
    assert compile_stubs(specs, out)["written"] == 1
    assert "description: edited" in (out / "one.py").read_text()


def test_the_yaml_is_what_airflow_shows_and_no_machine_path_leaks(tmp_path):
    specs = tmp_path / "specs"
    (specs / "team").mkdir(parents=True)
    text = _spec_text(0)
    (specs / "team" / "fleet_0000.yaml").write_text(text)
    bag = spec_dagbag(f"show-{tmp_path.name}", specs)
    stub = next(Path(p) for p in {d.fileloc for d in bag.dags.values()})
    assert text in stub.read_text()  # the Code tab shows the defining YAML
    for dag in bag.dags.values():
        assert dag.relative_fileloc == "team/fleet_0000.py"
        assert "Spec: `team/fleet_0000.yaml`" in dag.doc_md
        assert str(tmp_path) not in dag.doc_md
        assert str(tmp_path) not in (dag.description or "")
        assert dag.description.startswith("fleet_0000 (tabular classification model, ")  # model, schedule: what it does
    assert str(tmp_path) not in stub.read_text()


@pytest.mark.slow  # a fresh interpreter
def test_loading_a_fleet_imports_no_heavy_module():
    """A fresh interpreter: this test process has long imported pandas itself."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import fleet, json; "
        f"print(json.dumps(fleet.heavy_imports(30, {HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("i", [0, 1, 2, 4, 9])  # classification, regression, LoRA text, approval, no retraining
def test_the_benchmarks_stock_twin_builds_the_same_dags_with_no_project_import(i, tmp_path):
    """benchmarks/fleet.py's baseline: the stock-operator twin of a spec has the generated pipeline's DAGs,
    tasks, dependencies, schedules, dates and retries, and imports only Airflow (and datetime) at parse time."""
    import ast

    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.pipeline.factory import build_dags

    bench = _bench()
    spec = parse_spec(bench.varied_spec(i, twin_shapes_only=True), "team/x.yaml")
    source = bench.stock_source(spec)
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }  # fmt: skip
    assert {m for m in imported if not (m.startswith("airflow.") or m == "datetime")} == set()
    path = tmp_path / "twin.py"
    path.write_text(source)
    bag = DagBag(str(tmp_path / "none"), collect_dags=False)
    stock = {d.dag_id: d for d in bag.process_file(str(path), only_if_updated=False)}
    assert bag.import_errors == {}
    generated = build_dags(spec)
    assert set(stock) == set(generated)
    for dag_id, gen in generated.items():
        twin = stock[dag_id]
        assert {t.task_id: t.upstream_task_ids for t in twin.tasks} == {t.task_id: t.upstream_task_ids for t in gen.tasks}
        assert getattr(twin.timetable, "_expression", None) == getattr(gen.timetable, "_expression", None)
        assert (twin.start_date, twin.end_date, twin.max_active_runs) == (gen.start_date, gen.end_date, gen.max_active_runs)
        assert {t.task_id: t.retries for t in twin.tasks} == {t.task_id: t.retries for t in gen.tasks}


@pytest.mark.parametrize("i", [0, 1, 2, 4, 8])
def test_the_benchmarks_project_operator_twin_builds_the_same_tasks(i, tmp_path):
    """benchmarks/fleet.py's other baseline, a hand-written file with this project's operators, builds the
    generated pipeline's DAGs with the same tasks and edges (scoring's estimation branch included)."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.pipeline.factory import build_dags

    bench = _bench()
    spec = parse_spec(bench.varied_spec(i, twin_shapes_only=True), "team/x.yaml")
    path = tmp_path / "twin.py"
    path.write_text(bench.handwritten_source(spec))
    bag = DagBag(str(tmp_path / "none"), collect_dags=False)
    found = bag.process_file(str(path), only_if_updated=False)
    assert bag.import_errors == {}
    hand = {d.dag_id: {t.task_id: t.upstream_task_ids for t in d.tasks} for d in found}
    assert hand == {k: {t.task_id: t.upstream_task_ids for t in d.tasks} for k, d in build_dags(spec).items()}


def test_the_bundles_preload_holds_every_module_a_spec_file_imports():
    """The bundle preloads (in the dag-processor's manager, before it forks a parsing process per file) every
    module that compiling a spec imports, so each file costs only its own work. A fresh interpreter: after
    preload, compiling 40 varied specs (every kind but pod training) imports no module of the project."""
    code = f"""
import json, sys
sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import yaml, fleet
from airflow_mlops.pipeline.loader import compile_spec, preload
preload()
before = set(sys.modules)
for i in range(40):
    raw = fleet.varied_spec(i)
    if raw.get("training", {{}}).get("executor") != "kubernetes":
        compile_spec(yaml.safe_dump(raw), f"{{raw['name']}}.yaml")
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith("airflow_mlops"))))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("args", "committed"),
    [([], "pipeline-spec.schema.json"), (["--markdown"], "spec-reference.md")],
)
def test_published_schema_and_reference_match_the_typed_spec(args, committed, tmp_path):
    out = tmp_path / committed
    assert cli(["spec-schema", *args, "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "docs" / committed).read_text(), (
        f"docs/{committed} is stale: run `airflow-mlops spec-schema {' '.join(args)} --out docs/{committed}`"
    )


def test_every_published_example_validates_against_the_json_schema():
    import jsonschema

    schema = json.loads((ROOT / "docs" / "pipeline-spec.schema.json").read_text())
    for path in [
        *(ROOT / "dags" / "pipelines").glob("*.yaml"),
        *(ROOT / "tests" / "dag_bundle" / "pipelines").glob("*.yaml"),
    ]:
        raw = yaml.safe_load(path.read_text())
        raw = json.loads(json.dumps(raw, default=str))  # dates as the strings an editor sees
        jsonschema.validate(raw, schema)
    with pytest.raises(jsonschema.ValidationError, match="hidden_unit"):
        jsonschema.validate(
            json.loads(
                json.dumps(
                    yaml.safe_load(_spec_text(93, model={"params": {"hidden_unit": [1]}})), default=str
                )
            ),
            schema,
        )


@pytest.mark.slow
def test_the_real_dag_processor_loads_the_fleet_and_lists_each_broken_spec(fleet, tmp_path):
    bundles = [{"name": "fleet", "classpath": "airflow_mlops.pipeline.bundle.PipelineSpecBundle",
                "kwargs": {"path": str(fleet)}}]  # fmt: skip
    env = _bench().processor_env(tmp_path, bundles)
    airflow = str(Path(sys.executable).with_name("airflow"))

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run(
            [airflow, *args], env=env, capture_output=True, text=True, timeout=600, check=check
        )
        return done.stdout

    def listing(*args: str) -> list[dict]:  # the CLI's JSON, after any log lines it printed
        return json.loads(next(line for line in run(*args, check=False).splitlines() if line.startswith("[")))

    run("db", "migrate")
    run("dag-processor", "--num-runs", "1")
    listed = {d["dag_id"] for d in listing("dags", "list", "-o", "json")}
    assert listed == _valid_dag_ids(fleet)
    errors = {e["filepath"]: e["error"] for e in listing("dags", "list-import-errors", "-o", "json")}
    assert sorted(errors) == sorted(rel.replace(".yaml", ".py") for rel in BROKEN)
    for rel, (_, line) in BROKEN.items():
        assert f"invalid pipeline spec {rel}:" in errors[rel.replace(".yaml", ".py")]
        assert line in errors[rel.replace(".yaml", ".py")]


def test_reparsing_an_unchanged_spec_gives_the_same_serialized_dags(tmp_path):
    """Airflow writes a new DAG version only when the serialized DAG changes: parsing an unchanged spec again
    must give byte-identical serialized DAGs, so the fleet's periodic re-parse stores nothing."""
    from airflow.serialization.serialized_objects import DagSerialization

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "one.yaml").write_text(_spec_text(5))  # a search pipeline: mapped trials too
    first = spec_dagbag(f"a-{tmp_path.name}", specs)
    second = spec_dagbag(f"b-{tmp_path.name}", specs)
    assert first.dag_ids
    assert sorted(first.dag_ids) == sorted(second.dag_ids)
    for dag_id in first.dag_ids:
        a = DagSerialization.to_dict(first.dags[dag_id])
        b = DagSerialization.to_dict(second.dags[dag_id])
        for d in (a, b):  # where each bag's generated file lives is not part of the DAG
            d["dag"].pop("fileloc", None)
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), dag_id


def test_the_spec_retries_reach_every_task():
    """``retries`` sets every task's retries and delay, test_model included (a re-run replays its recorded
    decision, so a retry is safe); quality gates fail without retry through their exception's class."""
    import datetime as dt

    from airflow_mlops.pipeline.factory import build_dags

    raw = yaml.safe_load(_spec_text(3))
    raw["retries"] = {"count": 4, "delay_seconds": 7, "backoff": 2, "max_delay_seconds": 90}
    dags = build_dags(parse_spec(raw, "retries.yaml"))
    train = dags[f"{raw['name']}__train"]
    for task in train.tasks:
        assert (task.task_id, task.retries, task.retry_delay) == (task.task_id, 4, dt.timedelta(seconds=7))
        assert task.retry_exponential_backoff == 2
        assert task.max_retry_delay == dt.timedelta(seconds=90)
    default = build_dags(parse_spec(yaml.safe_load(_spec_text(3)), "default.yaml"))[f"{raw['name']}__train"]
    assert {t.task_id: t.retries for t in default.tasks}["test_model"] == 1
    assert {t.retry_delay for t in default.tasks} == {dt.timedelta(seconds=60)}
