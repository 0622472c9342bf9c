"""The `coverage` subcommand (flow/commands/coverage.py): bad input is one line and exit 2
(a waiver without its reason, --reuse with nothing recorded); the campaign itself is `make
coverage`."""

from xbarflow.flow.cli import main


def test_waiver_without_reason_is_exit_2(tmp_path, capsys):
    waivers = tmp_path / "w.toml"
    waivers.write_text('[[waiver]]\nmatch = "toggle:*"\n')
    assert main(["coverage", "--waivers", str(waivers), "--out", str(tmp_path / "o"), "--reuse"]) == 2
    err = capsys.readouterr().err
    assert "one-line 'reason'" in err and err.count("\n") == 1


def test_reuse_without_a_campaign_is_exit_2(tmp_path, capsys):
    assert main(["coverage", "--out", str(tmp_path / "o"), "--reuse",
                 "--summary", str(tmp_path / "s.md")]) == 2
    err = capsys.readouterr().err
    assert "run without --reuse first" in err and err.count("\n") == 1
    assert not (tmp_path / "s.md").exists()
