import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from convexnn import (
    ConvexGatedReLUClassifier,
    ConvexGatedReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    lam_max,
    network_objective,
)
from convexnn.exceptions import PatternBudgetError, ValidationError

ALL = [ConvexReLURegressor, ConvexReLUClassifier, ConvexGatedReLURegressor,
       ConvexGatedReLUClassifier]
FAST = dict(patterns=8, max_iter=300, grow=False, random_state=0)


@parametrize_with_checks([cls(**FAST) for cls in ALL])
def test_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def _reg_data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.maximum(X[:, 0], 0) - 0.5 * X[:, 1] + 0.05 * rng.standard_normal(n)


@pytest.mark.parametrize("cls", ALL)
def test_objective_and_certificate_are_consistent(cls):
    X, y = _reg_data()
    if "Classifier" in cls.__name__:
        y = (y > 0).astype(int)
    est = cls(lam=0.01, patterns=10, random_state=0, grow=cls is ConvexReLURegressor).fit(X, y)
    cert = est.certificate_
    assert cert.primal == pytest.approx(est.objective_)
    assert cert.lower_bound <= est.objective_ + 1e-10
    assert cert.gap == pytest.approx(cert.primal - cert.lower_bound)
    assert est.n_neurons_ == est.coefs_[0].shape[1] == est.coefs_[1].shape[0]
    if cls._relu:  # the SPEC §1 value of the returned network is objective_
        yy = y if "Regressor" in cls.__name__ else 2.0 * y - 1
        loss = "squared" if "Regressor" in cls.__name__ else "logistic"
        assert network_objective(est.coefs_, est.intercepts_, X, yy, 0.01, loss) == \
            pytest.approx(est.objective_, rel=1e-10)


@pytest.mark.parametrize("cls", ALL)
def test_zero_rows_without_intercept_are_certified_on_all_rows(cls):
    """Rows of zeros without an intercept (outputs 0 whatever the weights; cone rows
    ``0 ≥ 0``) used to send ReLU fits past max_iter with a gap of ~0.45: the program is
    solved on the other rows with λ / a and reported on all of them."""
    X, y = _reg_data()
    if "Classifier" in cls.__name__:
        y = (y > 0).astype(int)
    X[[3, 17]] = 0.0
    kw = dict(lam=0.01, patterns=10, random_state=0, grow=False, fit_intercept=False)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = cls(**kw).fit(X, y, callback=seen.append)
    cert = est.certificate_
    assert cert.rel_gap <= 1e-6
    assert cert.primal == pytest.approx(est.objective_)
    # history and progress are on all rows too: the last record is the certified network
    assert est.history_[-1]["primal"] == pytest.approx(est.objective_, rel=1e-12)
    assert seen[-1]["objective"] == pytest.approx(est.objective_, rel=1e-12)
    assert seen[-1]["lower_bound"] == pytest.approx(cert.lower_bound, rel=1e-12)
    yy = y if "Regressor" in cls.__name__ else 2.0 * y - 1
    loss = "squared" if "Regressor" in cls.__name__ else "logistic"
    if cls._relu:  # the SPEC §1 value of the returned network on all 60 rows
        assert network_objective(est.coefs_, est.intercepts_, X, yy, 0.01, loss) == \
            pytest.approx(est.objective_, rel=1e-10)
    # the same optimum as the program on the 58 other rows with λ · 60 / 58
    live = np.ones(60, bool)
    live[[3, 17]] = False
    a = 58 / 60
    rest = cls(**dict(kw, lam=0.01 / a)).fit(X[live], y[live])
    const = (0.5 * (yy[~live] ** 2).sum() if loss == "squared"
             else 2 * np.log(2.0)) / 60
    assert est.objective_ == pytest.approx(a * rest.objective_ + const, rel=1e-7)


def test_zero_rows_keep_an_exact_pattern_set_global():
    """Exact enumeration on the other rows is exact for all rows (a zero row's pattern
    entry does not matter): the certificate stays global."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((14, 2))
    y = np.maximum(X[:, 0] - 0.3 * X[:, 1], 0) + 0.05 * rng.standard_normal(14)
    X[[2, 9]] = 0.0
    est = ConvexReLURegressor(lam=0.01, patterns="exact", fit_intercept=False,
                              random_state=0).fit(X, y)
    assert est.certificate_.scope == "global"
    assert est.certificate_.rel_gap <= 1e-6
    assert network_objective(est.coefs_, est.intercepts_, X, y, 0.01, "squared") == \
        pytest.approx(est.objective_, rel=1e-10)


def test_zero_rows_warm_start_refit():
    """A warm start carries patterns over all rows; the refit uses them on the others."""
    X, y = _reg_data()
    X[[3, 17]] = 0.0
    est = ConvexReLURegressor(lam=0.01, patterns=10, random_state=0, grow=False,
                              fit_intercept=False, warm_start=True).fit(X, y)
    est.set_params(lam=0.005)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.certificate_.rel_gap <= 1e-6
    assert network_objective(est.coefs_, est.intercepts_, X, y, 0.005, "squared") == \
        pytest.approx(est.objective_, rel=1e-10)


@pytest.mark.parametrize("cls", ALL)
def test_to_torch_matches_predictions(cls):
    X, y = _reg_data()
    if "Classifier" in cls.__name__:
        y = (y > 0).astype(int)
    est = cls(lam=0.01, patterns=10, random_state=0, grow=False).fit(X, y)
    out = est.to_torch()(torch.as_tensor(X)).detach().numpy()
    ref = est.predict(X) if "Regressor" in cls.__name__ else est.decision_function(X)
    np.testing.assert_allclose(out[:, 0], ref, rtol=1e-10, atol=1e-12)


def test_lam_above_lam_max_gives_the_zero_network():
    X, y = _reg_data()
    pat = np.random.default_rng(0).standard_normal((15, 3))
    lmax = lam_max(X, y, patterns=pat, fit_intercept=True)
    est = ConvexReLURegressor(lam=1.01 * lmax, patterns=pat).fit(X, y)
    assert est.n_neurons_ == 0
    np.testing.assert_allclose(est.predict(X), y.mean())
    est = ConvexReLURegressor(lam=0.5 * lmax, patterns=pat).fit(X, y)
    assert est.n_neurons_ > 0


def test_multiclass_and_string_labels():
    X, y = make_classification(n_samples=90, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[y]
    est = ConvexReLUClassifier(lam=0.01, patterns=10, random_state=0).fit(X, labels)
    assert set(est.predict(X)) <= set(labels)
    assert est.predict_proba(X).shape == (90, 3)
    assert est.score(X, labels) > 0.7
    assert est.certificate_.lower_bound <= est.objective_


def test_multiclass_fit_is_never_worse_than_its_seed():
    """With several outputs the separable convex program can end above a vector-output
    network (and a capped solve above its seed): the fit returns the better network."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:150, ::4])
    y = y[:150]
    est = ConvexReLUClassifier(lam=1e-3, random_state=0, seed_runs=1, seed_epochs=200,
                               seed_width=16, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    assert est.objective_ <= seed * (1 + 1e-9)
    Y = np.searchsorted(est.classes_, y)
    obj = network_objective(est.coefs_, est.intercepts_, X, Y, 1e-3, "softmax")
    assert abs(obj - est.objective_) <= 1e-9 * obj
    assert est.certificate_.lower_bound <= est.objective_


def test_multiclass_relu_solves_the_directional_program_of_its_refined_seed():
    """Several outputs, ReLU, with seeding: the fit skips the separable program (it ends
    above the seeding networks), refines the best seed by L-BFGS, solves the directional
    program over its (pattern, direction) pairs with column generation, certifies the
    result by the vector-output dual bound and warns when that gap is above tol; without
    seeding (seed_runs=0) the separable program is solved."""
    from convexnn.exceptions import ConvergenceWarning

    X, y = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=1)
    kw = dict(lam=1e-2, patterns=8, random_state=0, seed_runs=2, seed_epochs=200,
              seed_width=8)
    seen = []
    with pytest.warns(ConvergenceWarning, match="directional convex program"):
        est = ConvexReLUClassifier(**kw).fit(X, y, callback=seen.append)
    assert {"convex_skipped", "directional"} <= {r["phase"] for r in seen}  # progress
    phases = [h.get("phase") for h in est.history_]
    assert "convex_skipped" in phases and "solve" not in phases
    assert "seed_kept" not in phases  # no separable solution was compared with the seed
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    # the seed is refined by L-BFGS (never worse, here better), then by the program
    polished = next(h["primal"] for h in est.history_ if h.get("phase") == "seed_polished")
    assert polished < seed * (1 - 1e-6)
    rounds = [h for h in est.history_ if h.get("phase") == "directional"]
    assert len(rounds) >= 2 and rounds[0]["primal"] < polished  # kinks L-BFGS stalls at
    assert abs(est.objective_ - rounds[-1]["primal"]) <= 1e-9 * est.objective_
    assert est.n_iter_ == sum(r["n_iter"] for r in rounds)
    Y = np.searchsorted(est.classes_, y)
    obj = network_objective(est.coefs_, est.intercepts_, X, Y, 1e-2, "softmax")
    assert abs(obj - est.objective_) <= 1e-9 * obj
    assert est.certificate_.lower_bound <= est.objective_
    # the unregularized output bias is at its optimum: the loss gradient in b is ~zero
    Z = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0) @ est.coefs_[1] \
        + est.intercepts_[1]
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    assert np.abs((P - np.eye(3)[Y]).mean(0)).max() <= 1e-7
    # the certificate's pattern set holds the returned network's patterns
    X_aug = np.hstack([X, np.ones((len(X), 1))])
    have = {tuple(m) for m in (X_aug @ est._convex_gates.T >= 0).T}
    W1a = np.vstack([est.coefs_[0], est.intercepts_[0]])
    assert {tuple(m) for m in (X_aug @ W1a > 0).T} <= have
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est2 = ConvexReLUClassifier(**dict(kw, seed_runs=0)).fit(X, y)
    phases2 = [h.get("phase") for h in est2.history_]
    assert "convex_skipped" not in phases2 and "solve" in phases2


def test_progress_reaches_callbacks_and_verbose_prints(capsys):
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    y = y.astype(float)
    seen = []
    est = ConvexReLURegressor(lam=0.01, patterns=8, grow=False, random_state=0)
    est.fit(X, y, callback=seen.append)
    phases = [info["phase"] for info in seen]
    assert "newton" in phases and "solve" in phases  # inside a solve, and after each round
    assert "polish" in phases  # the support polish that ends a ReLU interior-point solve
    # the certificate's own phases close the run: before the bound, and with it
    assert phases[-2:] == ["certificate", "certified"]
    assert seen[-1]["lower_bound"] == est.certificate_.lower_bound
    pol = [i for i in seen if i["phase"] == "polish"]
    assert all(i["objective"] >= est.certificate_.lower_bound - 1e-9 for i in pol)
    steps = [i for i in seen if i["phase"] == "newton"]
    assert all(np.isfinite(i["objective"]) for i in steps)
    assert min(i["objective"] for i in steps) >= est.certificate_.lower_bound - 1e-9
    ConvexReLURegressor(lam=0.01, patterns=8, grow=False, random_state=0, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "ConvexReLURegressor [solve" in err and "[newton" not in err
    ConvexReLURegressor(lam=0.01, patterns=8, grow=False, random_state=0, verbose=2).fit(X, y)
    assert "[newton" in capsys.readouterr().err


def test_float32_follows_the_data():
    X, y = _reg_data()
    est = ConvexGatedReLURegressor(lam=0.01, patterns=10, random_state=0)
    est.fit(X.astype(np.float32), y.astype(np.float32))
    assert np.isfinite(est.objective_)


def test_float32_gated_fit_meets_tol_like_float64():
    """A float32 gated fit is certified as tightly as a float64 one: the interior point
    solves in float64, and the gaps (of the rounds and of the certificate) use the float64
    solution's dual point. Before, the float32 gap stalled near 1e-5 (diabetes, λ = 1e-3:
    the cancelling sums 𝒜ᵀV and the weights' rounding) and the fit re-solved until
    max_iter."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    fits = {}
    for dt in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            fits[dt] = ConvexGatedReLURegressor(lam=1e-3, patterns=100, grow=False,
                                                random_state=0, max_iter=200).fit(
                X.astype(dt), y.astype(dt))
    f32, f64 = fits[np.float32], fits[np.float64]
    assert f32.converged_ and f32.certificate_.rel_gap <= 1e-6
    assert f32.n_iter_ <= 3 * max(f64.n_iter_, 10)


def test_float32_fit_stopped_by_max_iter_suggests_float64():
    X, y = _reg_data()
    est = ConvexGatedReLURegressor(lam=0.01, patterns=10, random_state=0, max_iter=1,
                                   seed_runs=0, tol=1e-15)  # out of reach: it warns
    with pytest.warns(ConvergenceWarning, match="float64"):
        est.fit(X.astype(np.float32), y.astype(np.float32))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        est.fit(X, y)
    assert not any("float64" in str(x.message) for x in w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_matches_cpu():
    X, y = _reg_data()
    gates = np.random.default_rng(0).standard_normal((10, 3))  # same patterns on both
    a = ConvexGatedReLURegressor(lam=0.01, patterns=gates).fit(X, y)
    b = ConvexGatedReLURegressor(lam=0.01, patterns=gates, device="cuda").fit(X, y)
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-4)


def test_default_classifier_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    model = make_pipeline(StandardScaler(), ConvexReLUClassifier(random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xtr, ytr)
    assert model.score(Xte, yte) >= 0.95


@pytest.mark.parametrize("seed_optimizer", ["adam", "lbfgs"])
def test_seeding_optimizers_give_a_network_no_worse_than_their_seed(seed_optimizer):
    X, y = _reg_data()
    est = ConvexReLURegressor(lam=1e-2, patterns=5, seed_optimizer=seed_optimizer,
                              seed_epochs=200, random_state=0).fit(X, y)
    seed = [h for h in est.history_ if h.get("phase") == "seed"]
    assert len(seed) == 1
    assert est.objective_ <= seed[0]["primal"] * (1 + 1e-9)
    assert est.certificate_.gap <= 1e-6 * est.objective_


def test_float32_seeding_of_a_float64_fit_reports_the_float64_objective(monkeypatch):
    """A float64 fit seeds in float32 (training._SEED_DTYPE); the seed's objective is that
    of its weights in float64, not the float32 runs' own value."""
    import torch

    import convexnn.training as tr
    from convexnn.losses import encode_targets, get_loss

    X, y = _reg_data()
    Xt = torch.as_tensor(X)
    Y = encode_targets(y, "squared", device=Xt.device, dtype=Xt.dtype)
    ps = tr.build_patterns(Xt, 5, fit_intercept=False, generator=torch.Generator().manual_seed(0),
                           max_patterns=100)
    got = {}
    for dtype in (torch.float32, None):
        monkeypatch.setattr(tr, "_SEED_DTYPE", dtype)
        out = tr._seed_from_nonconvex(Xt, Xt, Y, get_loss("squared"), 1e-2, ps, relu=True,
                                      fit_intercept=False, epochs=300, width=8,
                                      generator=torch.Generator().manual_seed(1), runs=2)
        _, W, b, obj, net, _ = out
        assert W.dtype == torch.float64 and net.W1.dtype == torch.float64
        assert obj == pytest.approx(tr._score(net, Xt, Y, get_loss("squared"), 1e-2, False)[1],
                                    rel=1e-13)
        got[dtype] = net.W1
    # the float32 runs start from float32 draws: another network, not a rounded copy
    assert not torch.allclose(got[torch.float32], got[None], atol=1e-6)
    # data beyond float32's range is seeded in float64 (in float32 it would be inf)
    monkeypatch.setattr(tr, "_SEED_DTYPE", torch.float32)
    seen = []
    real = tr.train_networks
    monkeypatch.setattr(tr, "train_networks", lambda X, *a, **k: seen.append(X.dtype) or
                        real(X, *a, **k))
    for scale in (1.0, 1e39):
        _, W, _, obj, _, _ = tr._seed_from_nonconvex(
            Xt * scale, Xt * scale, Y, get_loss("squared"), 1e-2, ps, relu=True,
            fit_intercept=False, epochs=50, width=8,
            generator=torch.Generator().manual_seed(1), runs=1)
        assert math.isfinite(obj) and bool(torch.isfinite(W).all())
    assert seen == [torch.float32, torch.float64]


def test_a_relu_fit_that_ends_before_max_iter_says_the_bound_limits_it():
    """A tol below what the certificate can show (1e-16): the interior point stops on its
    own, and the warning says that more iterations will not help (not "raise max_iter")."""
    X, y = _reg_data()
    with pytest.warns(ConvergenceWarning, match="looseness of the lower bound") as rec:
        est = ConvexReLURegressor(lam=1e-2, patterns=5, tol=1e-16, random_state=0).fit(X, y)
    assert est.n_iter_ < est.max_iter
    assert not any("raise max_iter" in str(w.message) for w in rec)
    assert est.certificate_.rel_gap <= 1e-9  # the network itself is solved


def test_seeding_progress_is_reported_and_kept():
    """The Adam seeding runs report the best objective reached so far (epochs 1, 2, 4, …,
    and every 16): each improvement goes into the history, before the "seed" record, and
    to the callback."""
    X, y = _reg_data()
    seen = []
    est = ConvexReLURegressor(lam=1e-2, patterns=5, seed_epochs=600, seed_runs=2,
                              random_state=0).fit(X, y, callback=seen.append)
    phases = [h.get("phase") for h in est.history_]
    first_seed = phases.index("seed")
    prog = [h for h in est.history_[:first_seed] if h.get("phase") == "seeding"]
    assert len(prog) == phases[:first_seed].count("seeding")
    # at most epochs 1, 2, 4, …, 512 and the 37 multiples of 16 (41 distinct), improvements
    # only; more than the 12 of the powers of two and multiples of 250
    assert 12 < len(prog) <= 41
    vals = [h["primal"] for h in prog]
    assert all(a > b for a, b in zip(vals, vals[1:], strict=False))  # improvements
    assert vals[-1] >= est.history_[first_seed]["primal"] * (1 - 1e-9)
    assert vals[0] > 2 * vals[-1]  # a random network at epoch 1
    times = [h["time"] for h in prog]
    assert times == sorted(times) and times[-1] <= est.history_[first_seed]["time"]
    assert [i["objective"] for i in seen if i["phase"] == "seeding"] == vals


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs,match", [
    (dict(lam=-1.0), r"'lam' parameter of ConvexReLURegressor must be a float in the range "
                     r"\(0.0, inf\)\. Got -1.0 instead"),
    (dict(lam=0.0), r"'lam' parameter"),
    (dict(patterns="all"), r"'patterns' parameter"),
    (dict(patterns=0), r"'patterns' parameter"),
    (dict(dtype="float16"), r"'dtype' parameter"),
    (dict(seed_optimizer="sgd"), r"'seed_optimizer' parameter .* Got 'sgd' instead"),
    (dict(patterns=np.ones((3, 7))), r"'patterns' parameter .* shape \(n_gates, 3\)"),
])
def test_bad_parameters_name_the_parameter(kwargs, match):
    X, y = _reg_data()
    with pytest.raises(ValueError, match=match):
        ConvexReLURegressor(**kwargs).fit(X, y)


def test_bad_data():
    X, y = _reg_data()
    est = ConvexReLURegressor(patterns=5)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(Xn, y)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(Xi, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        est.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.fit(y, y)
    with pytest.raises(ValueError, match="only one class"):
        ConvexReLUClassifier(patterns=5).fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="Unknown label type"):
        ConvexReLUClassifier(patterns=5).fit(X, y)


def test_cuda_that_is_not_there():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    X, y = _reg_data()
    with pytest.raises(ValidationError, match="'device' parameter .* CUDA is not available"):
        ConvexReLURegressor(device="cuda").fit(X, y)


def test_constant_target_gives_a_constant_model():
    X, _ = _reg_data()
    est = ConvexReLURegressor(patterns=5, random_state=0).fit(X, np.full(len(X), 3.0))
    assert est.n_neurons_ == 0
    np.testing.assert_allclose(est.predict(X), 3.0)


def test_exact_enumeration_too_large_is_refused():
    X, y = _reg_data(n=300, d=8)
    with pytest.raises(PatternBudgetError, match="patterns"):
        ConvexReLURegressor(patterns="exact", max_patterns=1000).fit(X, y)


def test_warm_start_reuses_the_solution():
    X, y = _reg_data()
    est = ConvexReLURegressor(lam=0.05, patterns=10, random_state=0, warm_start=True,
                              grow=False)
    est.fit(X, y)
    first = est.objective_
    est.set_params(lam=0.02).fit(X, y)
    assert est.objective_ < first


def test_auto_seed_width_is_capped_by_the_samples():
    """An optimal network has at most n c + 1 neurons: seeds wider than n c / 2 only add
    near-duplicate patterns (and Newton cost)."""
    from convexnn.training import auto_seed_width

    small = auto_seed_width(120, 1, 62, 16, 3, relu=True)
    assert small == 60
    assert auto_seed_width(120, 3, 62, 16, 3, relu=True) > small  # several outputs: more
    # large n: the Newton budget and the [64, 256] range decide, as before the cap
    big = auto_seed_width(100_000, 1, 11, 16, 3, relu=True)
    assert 64 <= big <= 256
    assert auto_seed_width(2, 1, 3, 0, 3, relu=False) == 1


def test_auto_seed_width_of_multiclass_relu_grows_with_the_data():
    """ReLU with several outputs returns its refined best seed: 64 neurons on small data,
    up to 128 on large (letter: +1.2 points of held-out accuracy at 128)."""
    from convexnn.training import auto_seed_width

    assert auto_seed_width(112, 3, 5, 0, 3, relu=True) == 64  # iris
    assert auto_seed_width(300, 10, 65, 0, 3, relu=True) == 64  # digits, 300 rows
    assert auto_seed_width(4000, 26, 17, 0, 3, relu=True) == 128  # letter
    assert auto_seed_width(2000, 10, 627, 0, 3, relu=True) == 128  # MNIST subset
    assert auto_seed_width(3000, 2, 17, 0, 3, relu=True) == 93  # n c / 64 in between
    assert auto_seed_width(30, 3, 5, 0, 3, relu=True) == 45  # at most n c / 2


def test_multiclass_relu_interrupted_refinement_returns_the_seed(monkeypatch):
    """Ctrl-C during the L-BFGS refinement of a multiclass ReLU fit: the fit warns and
    returns the best seeding network as it was, with its certificate."""
    import convexnn.training as tr
    from convexnn.exceptions import ConvergenceWarning

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "polish_network", interrupt)
    X, y = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=1)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        est = ConvexReLUClassifier(lam=1e-2, patterns=8, random_state=0, seed_runs=2,
                                   seed_epochs=200, seed_width=8).fit(X, y)
    seed = next(h["primal"] for h in est.history_ if h.get("phase") == "seed")
    assert "seed_polished" not in [h.get("phase") for h in est.history_]
    assert abs(est.objective_ - seed) <= 1e-9 * seed
    assert est.certificate_.lower_bound <= est.objective_
