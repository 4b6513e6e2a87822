"""The Python module `scorediff` against the command-line program (run by ctest as Python.ModuleTests)."""
import os
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest

import scorediff

BINARY = os.environ.get("SCOREDIFF_BINARY", "build/scorediff")
TINY = ["train.steps=300", "train.log_every=100", "train.ckpt_every=0", "run.threads=1"]


@pytest.fixture(scope="module")
def run():
    with tempfile.TemporaryDirectory() as tmp:
        result = scorediff.train("swiss-roll", TINY, out=os.path.join(tmp, "run"))
        yield tmp, result


def cli(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True)


def test_train_returns_the_finished_run(run):
    _, result = run
    assert result["steps"] == 300 and not result["cancelled"]
    assert np.isfinite(result["final_loss"])
    assert scorediff.load(result["checkpoint"]).step == 300


def test_sample_equals_the_command_bit_for_bit(run):
    tmp, result = run
    out = os.path.join(tmp, "cli.npy")
    done = cli("sample", "--ckpt", result["checkpoint"], "--seed", "5", "-n", "400", "-q", "-o", out)
    assert done.returncode == 0, done.stderr
    model = scorediff.load(result["checkpoint"])
    x = model.sample(n=400, seed=5)
    assert x.dtype == np.float32 and x.shape == (400, 2)
    assert np.array_equal(x, np.load(out).astype(np.float32))
    assert not np.array_equal(model.sample(n=400, seed=6), x)


def test_score_denoise_and_weights(run):
    _, result = run
    model = scorediff.load(result["checkpoint"])
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    sigma = np.array([0.05, 0.1, 0.5, 1.0, 3.0, 5.0])
    s = model.score(x, sigma)
    assert s.shape == (6, 2)
    # One sigma for all rows equals that sigma per row.
    np.testing.assert_allclose(model.score(x, 0.5)[2], s[2], rtol=1e-5, atol=1e-6)
    # Tweedie under the run's process (VE for the Swiss-roll preset: m = 1, std = sigma).
    d = model.denoise(x, sigma)
    np.testing.assert_allclose(d, x + sigma[:, None] ** 2 * s, rtol=1e-5, atol=1e-5)
    logp = model.log_likelihood(x[:4])
    assert logp.dtype == np.float64 and logp.shape == (4,) and np.all(np.isfinite(logp))
    weights = model.weights()
    assert len(weights) > 2 and all(isinstance(w, np.ndarray) for w in weights.values())
    raw = scorediff.load(result["checkpoint"], ema=False).weights()
    assert weights.keys() == raw.keys()
    assert any(not np.array_equal(weights[k], raw[k]) for k in weights)


def test_progress_callback_cancels_and_resume_finishes_the_same_run(run):
    tmp, result = run
    out = os.path.join(tmp, "cancelled")
    seen = []

    def progress(info):
        seen.append(info["step"])
        return info["step"] < 100

    stopped = scorediff.train("swiss-roll", TINY, out=out, progress=progress)
    assert stopped["cancelled"] and seen == list(range(1, 101))
    resumed = scorediff.train("swiss-roll", TINY, out=out, resume=True)
    assert resumed["steps"] == 300 and not resumed["cancelled"]
    a = scorediff.load(resumed["checkpoint"]).weights()
    b = scorediff.load(result["checkpoint"]).weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_an_exception_in_progress_stops_the_run_with_its_checkpoint_and_is_raised(run):
    tmp, _ = run
    out = os.path.join(tmp, "raised")

    def progress(info):
        if info["step"] == 50:
            raise ValueError("stop here")
        return True

    with pytest.raises(ValueError, match="stop here"):
        scorediff.train("swiss-roll", TINY, out=out, progress=progress)
    assert scorediff.load(os.path.join(out, "last.safetensors")).step == 50


def test_eval_measures_points_against_the_dataset(run):
    _, result = run
    x = scorediff.load(result["checkpoint"]).sample(n=1000)
    good = scorediff.eval(x, "swiss-roll")
    assert good["swd"] > 0
    assert scorediff.eval(x + 3.0, "swiss-roll")["swd"] > 3 * good["swd"]


def test_the_gil_is_released_while_cpp_samples(run):
    _, result = run
    model = scorediff.load(result["checkpoint"])
    ticks, done = [0], threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        start, t0 = ticks[0], time.perf_counter()
        time.sleep(0.3)                      # the GIL is free: the counter's own rate
        rate = (ticks[0] - start) / (time.perf_counter() - t0)
        start, t0 = ticks[0], time.perf_counter()
        model.sample(n=3000)                 # C++ work, about 2 s
        during, seconds = ticks[0] - start, time.perf_counter() - t0
    finally:
        done.set()
        counter.join()
    # Holding the GIL for the call would leave the counter one switch interval (5 ms) of it: under 0.5 %.
    assert during > 0.05 * rate * seconds, (during, rate, seconds)


def thread_count():
    return len(os.listdir("/proc/self/task"))


def test_bad_input_raises_scorediff_error_with_the_commands_line(run):
    tmp, result = run
    missing = os.path.join(tmp, "missing.safetensors")
    with pytest.raises(scorediff.Error) as error:
        scorediff.load(missing)
    done = cli("sample", "--ckpt", missing, "-q", "-o", os.path.join(tmp, "x.npy"))
    assert done.returncode == 2
    assert done.stderr == "scorediff: error: " + str(error.value) + "\n"

    model = scorediff.load(result["checkpoint"])
    model.sample(n=10)
    threads = thread_count()
    with pytest.raises(scorediff.Error, match="'nope'"):
        model.sample(sampler="nope")
    with pytest.raises(scorediff.Error, match="rows of 3 values, the model's data 2"):
        model.score(np.zeros((4, 3), np.float32), 1.0)
    with pytest.raises(scorediff.Error, match="x must have shape"):
        model.score(np.zeros(4, np.float32), 1.0)
    with pytest.raises(scorediff.Error, match="NaN or Inf"):
        model.score(np.array([[0.0, np.nan]]), 1.0)
    with pytest.raises(scorediff.Error, match="sigma -1 is outside the model.s noise range"):
        model.denoise(np.zeros((2, 2)), [1.0, -1.0])
    # A NumPy scalar is one sigma for every row.
    np.testing.assert_array_equal(model.score(np.ones((2, 2)), np.float32(0.5)), model.score(np.ones((2, 2)), 0.5))
    with pytest.raises(scorediff.Error):
        scorediff.train("no-such-preset")
    with pytest.raises(scorediff.Error, match="outside the model's noise range"):
        model.score(np.zeros((2, 2)), 1e6)
    assert issubclass(scorediff.Error, RuntimeError)
    # Repeated calls, failed and finished, leave as many threads as one call did.
    for _ in range(3):
        model.sample(n=10)
        model.log_likelihood(np.zeros((2, 2)))
        with pytest.raises(scorediff.Error):
            model.sample(sampler="nope")
    assert thread_count() == threads
