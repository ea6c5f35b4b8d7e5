"""`sharp-theory run diagonal-net`: the JSON summary equals the library's numbers; bad input is one
line on stderr with exit code 2."""
import json

import jax
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.cli import main
from sharp_theory.problems.diagonal import OBSERVABLES, diagonal_linear, sparse_regression_data

KEYS = ("X", "y", "X_test", "y_test")


@pytest.fixture()
def data_file(tmp_path):
    data = sparse_regression_data(8, 6, 10, 2, 1)
    path = tmp_path / "data.npz"
    np.savez(path, **{key: data[key] for key in KEYS})
    return path, data


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_json_summary_matches_the_library(capsys, data_file):
    path, data = data_file
    summary = run_json(capsys, ["run", "diagonal-net", "--data", str(path), "--optimizer", "usam",
                                "--m", "1", "--lr", "0.2", "--rho", "0.3", "--steps", "300",
                                "--init-scale", "0.2", "--x64"])
    assert set(summary) == {"train_loss", "test_loss", "l1_norm", "effective_init_mean", "status"}
    problem = diagonal_linear(**{k: data[k] for k in KEYS}, init_scale=0.2)
    traj = st.run(problem, st.optim.usam(0.2, 0.3, m=1), steps=300, key=jax.random.key(0),
                  observe=OBSERVABLES, stride=300)
    assert summary["status"] == "ok"
    assert summary["test_loss"] == pytest.approx(float(traj.final("test_loss")), rel=1e-12)
    assert summary["train_loss"] == pytest.approx(float(traj.final("train_loss")), rel=1e-12)
    assert summary["l1_norm"] == pytest.approx(float(traj.final("l1_norm")), rel=1e-12)
    assert summary["effective_init_mean"] == pytest.approx(float(np.mean(traj.final("c"))), rel=1e-12)


def test_other_optimizers_and_parametrization_run(capsys, data_file):
    path, _ = data_file
    for extra in (["--optimizer", "gd", "--m", "0"], ["--optimizer", "sgd", "--seed", "3"],
                  ["--optimizer", "sgd", "--batch-size", "4"],
                  ["--optimizer", "sam", "--rho", "0.05", "--m", "0"],
                  ["--optimizer", "usam", "--parametrization", "uu-vv", "--m", "2"]):
        summary = run_json(capsys, ["run", "diagonal-net", "--data", str(path), "--steps", "50",
                                    "--lr", "0.05"] + extra)
        assert summary["status"] == "ok" and summary["train_loss"] >= 0


def test_float32_default_and_plain_output(capsys, data_file):
    path, _ = data_file
    assert main(["run", "diagonal-net", "--data", str(path), "--steps", "20"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("diagonal-net [uv, a=0.1] gd") and "(ok)" in line


def test_divergence_is_reported_not_crashed(capsys, data_file):
    path, _ = data_file
    summary = run_json(capsys, ["run", "diagonal-net", "--data", str(path), "--lr", "50",
                                "--init-scale", "1", "--steps", "100", "--x64"])
    assert summary["status"].startswith("diverged at step")


def write(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", ["missing", "shape", "features", "nan", "negative_rho", "bad_m",
                                  "rho_for_gd", "no_file", "not_npz", "zero_steps",
                                  "batch_for_sam", "zero_batch"])
def test_bad_input_is_one_line_with_exit_code_2(capsys, tmp_path, data_file, case):
    path, data = data_file
    good = {key: data[key] for key in KEYS}
    args = ["run", "diagonal-net", "--data", str(path)]
    if case == "missing":
        args[3] = str(write(tmp_path, "m.npz", X=data["X"], y=data["y"]))
    elif case == "shape":
        args[3] = str(write(tmp_path, "s.npz", **{**good, "y": data["y"][:3]}))
    elif case == "features":
        args[3] = str(write(tmp_path, "f.npz", **{**good, "X_test": data["X_test"][:, :4]}))
    elif case == "nan":
        bad = data["X"].copy()
        bad[0, 0] = np.inf
        args[3] = str(write(tmp_path, "n.npz", **{**good, "X": bad}))
    elif case == "negative_rho":
        args += ["--optimizer", "usam", "--rho", "-0.1"]
    elif case == "bad_m":
        args += ["--optimizer", "sam", "--m", "3"]
    elif case == "rho_for_gd":
        args += ["--rho", "0.1"]
    elif case == "no_file":
        args[3] = str(tmp_path / "absent.npz")
    elif case == "not_npz":
        (tmp_path / "text.npz").write_text("not an archive")
        args[3] = str(tmp_path / "text.npz")
    elif case == "zero_steps":
        args += ["--steps", "0"]
    elif case == "batch_for_sam":
        args += ["--optimizer", "usam", "--batch-size", "4"]
    elif case == "zero_batch":
        args += ["--optimizer", "sgd", "--batch-size", "0"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sharp-theory: error: invalid ")
