"""Bad numbers on the command line (app/commands/argtypes.py) are argparse's usage error, exit 2, before any work:
a negative `--every` crashed `postbacks` and `alerts deliver` after a first round, `--batch -1` reached the SQL,
`--rate nan` and `--seconds nan` ran."""

from __future__ import annotations

import pytest

from app import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["postbacks", "--every", "-5"],
        ["postbacks", "--every", "0"],
        ["postbacks", "--batch", "-1"],
        ["postbacks", "--timeout", "0"],
        ["alerts", "deliver", "--every", "-1"],
        ["alerts", "deliver", "--batch", "0"],
        ["ingest", "--every", "nan"],
        ["ingest", "--every", "-5"],
        ["live", "--rate", "nan"],
        ["live", "--rate", "0"],
        ["live", "--rate", "inf"],
        ["live", "--rate", "5", "--seconds", "nan"],
    ],
)
def test_a_bad_number_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "must be a positive" in capsys.readouterr().err


def test_good_numbers_pass():
    args = cli.build_parser().parse_args(["postbacks", "--every", "2.5", "--batch", "10", "--timeout", "3"])
    assert (args.every, args.batch, args.timeout) == (2.5, 10, 3.0)
    assert cli.build_parser().parse_args(["live", "--rate", "0.5"]).rate == 0.5
