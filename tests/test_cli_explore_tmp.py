from pathlib import Path
from typer.testing import CliRunner
from flows.cli import app
import flows.cli as cli

DEMO = "troupe/examples/scenarios/demo.yaml"

def test_explore(prefect_server, fake, tmp_path, monkeypatch):
    monkeypatch.setattr(cli.out, "width", 200)
    runner = CliRunner()
    sets = ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"]
    r = runner.invoke(app, ["run", DEMO, "--datasets", str(tmp_path), "--run-id", "r1", "--transcript", *sets])
    print("EXIT", r.exit_code, r.exception)
    print("STDOUT\n", r.stdout)
    print("STDERR\n", r.stderr)
    print("CALLS", fake.calls)
    r = runner.invoke(app, ["run", DEMO, "--datasets", str(tmp_path), "--run-id", "r2", "--quiet", *sets])
    print("EXIT", r.exit_code, r.exception)
    print("STDOUT\n", r.stdout)
    print("STDERR\n", r.stderr)
    print("CALLS", fake.calls)
    for args in (["runs"], ["show", "r1"], ["sql", "select * from runs"]):
        r = runner.invoke(app, [*args, "--datasets", str(tmp_path)])
        print(args, r.exit_code, r.stdout, r.stderr)
