import copy
import itertools

import numpy as np
import pytest
from scipy.optimize import minimize
from threadpoolctl import threadpool_info

from bdnn.hashing import training
from bdnn.hashing.network import IDENTITY, SIGMOID, Layer, encode_bits, pack, unpack_layers
from bdnn.hashing.training import NonFiniteObjectiveError, fit_weights
from bdnn.hashing.uh_bdnn import (
    UH_TERMS,
    UHBDNN,
    UHObjective,
    discrete_cyclic_descent,
    ridge_decoder,
    uh_code_step,
    uh_objective,
)

LAMBDAS = (0.1, 0.5, 0.3, 0.2)
BLOCKS = ["W1", "c1", "W2", "c2", "W3", "c3", "W4", "c4"]
SMALL = dict(hidden=(12, 8), max_outer=3, lbfgs_iter=15, n_validation=60, validation_k=10)


@pytest.fixture(scope="module")
def clustered_data():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=3.0, size=(8, 20))
    return centres[rng.integers(0, 8, size=240)] + rng.normal(size=(240, 20))


@pytest.fixture(scope="module")
def fitted_model(clustered_data):
    return UHBDNN(6, **SMALL).fit(clustered_data)


def tiny_problem():
    """Random float64 encoder, decoder, inputs and codes, small enough for finite differences."""
    rng = np.random.default_rng(7)
    m, sizes = 9, [5, 4, 3, 2]
    X = rng.random((m, sizes[0]))
    encoder = [
        Layer(rng.normal(size=(sizes[i + 1], sizes[i])), rng.normal(size=sizes[i + 1]), activation)
        for i, activation in enumerate([SIGMOID, SIGMOID, IDENTITY])
    ]
    decoder = Layer(rng.normal(size=(sizes[0], sizes[-1])), rng.normal(size=sizes[0]), IDENTITY)
    B = rng.choice([-1.0, 1.0], size=(m, sizes[-1]))
    return encoder, decoder, X, B


def blocks_of(encoder, decoder):
    return [layer_array for layer in [*encoder, decoder] for layer_array in (layer.weight, layer.bias)]


def objective_value(encoder, decoder, X, B):
    return sum(uh_objective(encoder, decoder, X, B, LAMBDAS)[0].values())


@pytest.mark.parametrize("block", range(len(BLOCKS)), ids=BLOCKS)
def test_gradient_matches_finite_differences(block):
    encoder, decoder, X, B = tiny_problem()
    _, encoder_gradient, decoder_gradient = uh_objective(encoder, decoder, X, B, LAMBDAS)
    analytic = [array for pair in [*encoder_gradient, decoder_gradient] for array in pair][block]

    target = blocks_of(encoder, decoder)[block]
    numeric = np.zeros_like(target)
    step = 1e-6
    for index in np.ndindex(target.shape):
        original = target[index]
        target[index] = original + step
        upper = objective_value(encoder, decoder, X, B)
        target[index] = original - step
        lower = objective_value(encoder, decoder, X, B)
        target[index] = original
        numeric[index] = (upper - lower) / (2 * step)

    relative_error = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert relative_error < 1e-6


def test_objective_has_all_five_terms():
    encoder, decoder, X, B = tiny_problem()
    terms = uh_objective(encoder, decoder, X, B, LAMBDAS)[0]
    assert tuple(terms) == UH_TERMS

    m = X.shape[0]
    H = X
    for layer in encoder:
        H = H @ layer.weight.T + layer.bias
        if layer.activation == SIGMOID:
            H = 1 / (1 + np.exp(-H))
    residual = X - B @ decoder.weight.T - decoder.bias
    weights = sum(np.sum(layer.weight**2) for layer in [*encoder, decoder])
    expected = {
        "reconstruction": np.sum(residual**2) / (2 * m),
        "weight_decay": LAMBDAS[0] / 2 * weights,
        "binary": LAMBDAS[1] / (2 * m) * np.sum((H - B) ** 2),
        "independence": LAMBDAS[2] / 2 * np.sum((H.T @ H / m - np.eye(H.shape[1])) ** 2),
        "balance": LAMBDAS[3] / (2 * m) * np.sum(H.sum(axis=0) ** 2),
    }
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-12)


def test_biases_not_regularised():
    encoder, decoder, X, B = tiny_problem()
    before = uh_objective(encoder, decoder, X, B, LAMBDAS)[0]["weight_decay"]
    for layer in [*encoder, decoder]:
        layer.bias += 10.0
    assert uh_objective(encoder, decoder, X, B, LAMBDAS)[0]["weight_decay"] == before


def test_encoder_loss_leaves_out_decoder_terms():
    encoder, decoder, X, B = tiny_problem()
    full_terms, full_gradient, _ = uh_objective(encoder, decoder, X, B, LAMBDAS)
    terms, gradient, decoder_gradient = uh_objective(encoder, None, X, B, LAMBDAS)
    assert decoder_gradient is None
    assert "reconstruction" not in terms
    decoder_decay = LAMBDAS[0] / 2 * np.sum(decoder.weight**2)
    assert terms["weight_decay"] == pytest.approx(full_terms["weight_decay"] - decoder_decay, rel=1e-12)
    for (dW, dc), (full_dW, full_dc) in zip(gradient, full_gradient):
        np.testing.assert_array_equal(dW, full_dW)
        np.testing.assert_array_equal(dc, full_dc)


def test_ridge_decoder_matches_lbfgs():
    encoder, decoder, X, B = tiny_problem()
    template = [decoder]

    def loss_and_gradient(vector):
        current = unpack_layers(vector, template, np.dtype(np.float64))[0]
        terms, _, gradient = uh_objective(encoder, current, X, B, LAMBDAS)
        return terms["reconstruction"] + terms["weight_decay"], pack(list(gradient))

    result = minimize(loss_and_gradient, np.zeros(decoder.weight.size + decoder.bias.size), jac=True,
                      method="L-BFGS-B", options={"maxiter": 10000, "gtol": 1e-12, "ftol": 0.0})
    iterative = unpack_layers(result.x, template, np.dtype(np.float64))[0]
    closed_form = ridge_decoder(X, B, LAMBDAS[0])
    np.testing.assert_allclose(closed_form.weight, iterative.weight, atol=1e-7)
    np.testing.assert_allclose(closed_form.bias, iterative.bias, atol=1e-7)


def test_ridge_decoder_zero_gradient():
    encoder, _, X, B = tiny_problem()
    decoder = ridge_decoder(X, B, LAMBDAS[0])
    dW, dc = uh_objective(encoder, decoder, X, B, LAMBDAS)[2]
    np.testing.assert_allclose(dW, 0, atol=1e-12)
    np.testing.assert_allclose(dc, 0, atol=1e-12)


def descent_objective(B, Q, G):
    return np.einsum("ik,kl,il->i", B, G, B) - 2 * np.sum(B * Q, axis=1)


def brute_force_codes(Q, G):
    candidates = np.array(list(itertools.product([-1.0, 1.0], repeat=Q.shape[1])))
    values = np.stack([descent_objective(np.broadcast_to(code, Q.shape), Q, G) for code in candidates], axis=1)
    return candidates[np.argmin(values, axis=1)], values.min(axis=1)


def test_b_step_exact_for_orthogonal_decoder():
    rng = np.random.default_rng(11)
    columns, _ = np.linalg.qr(rng.normal(size=(6, 4)))
    G = (columns * [1.0, 2.0, 0.5, 3.0]).T @ (columns * [1.0, 2.0, 0.5, 3.0])
    Q = rng.normal(size=(40, 4))
    codes = discrete_cyclic_descent(Q, G, n_sweeps=10)
    expected, _ = brute_force_codes(Q, G)
    np.testing.assert_array_equal(codes, expected)


def test_b_step_coordinate_minimum():
    rng = np.random.default_rng(12)
    W = rng.normal(size=(6, 4))
    G, Q = W.T @ W, rng.normal(size=(40, 4)) * 3
    codes = discrete_cyclic_descent(Q, G, n_sweeps=10)
    values = descent_objective(codes, Q, G)
    _, best = brute_force_codes(Q, G)
    assert np.all(values >= best - 1e-12)
    for bit in range(4):
        flipped = codes.copy()
        flipped[:, bit] *= -1
        assert np.all(descent_objective(flipped, Q, G) >= values - 1e-12)


def test_b_step_never_increases_per_sweep():
    rng = np.random.default_rng(13)
    W = rng.normal(size=(10, 8))
    G, Q = W.T @ W, rng.normal(size=(200, 8)) * 2
    totals = [descent_objective(discrete_cyclic_descent(Q, G, sweeps), Q, G).sum() for sweeps in range(1, 11)]
    assert np.all(np.diff(totals) <= 1e-9)


def test_b_step_sign_of_zero_is_plus_one():
    codes = discrete_cyclic_descent(np.zeros((3, 2)), np.zeros((2, 2)), n_sweeps=2)
    np.testing.assert_array_equal(codes, np.ones((3, 2)))


def test_uh_code_step_minimises_its_terms():
    rng = np.random.default_rng(14)
    m, D, L = 30, 6, 3
    X, H = rng.random((m, D)), rng.normal(size=(m, L))
    columns, _ = np.linalg.qr(rng.normal(size=(D, L)))
    decoder = Layer(columns * [0.8, 1.5, 0.3], rng.normal(size=D), IDENTITY)
    lambda2 = 0.7

    def terms(B):
        residual = X - B @ decoder.weight.T - decoder.bias
        return np.sum(residual**2, axis=1) / (2 * m) + lambda2 / (2 * m) * np.sum((H - B) ** 2, axis=1)

    codes = uh_code_step(X, H, decoder, lambda2)
    candidates = np.array(list(itertools.product([-1.0, 1.0], repeat=L)))
    best = np.min([terms(np.broadcast_to(code, (m, L))) for code in candidates], axis=0)
    np.testing.assert_allclose(terms(codes), best, rtol=1e-12)


def test_weight_step_decreases_objective(clustered_data):
    model = UHBDNN(6, **SMALL)
    X = (clustered_data - clustered_data.min(axis=0)) / np.ptp(clustered_data, axis=0).max()
    rng = np.random.default_rng(0)
    codes = rng.choice([-1.0, 1.0], size=(X.shape[0], model.n_bits))
    encoder = tiny_encoder(X.shape[1], rng)
    objective = UHObjective(X, LAMBDAS)
    before = sum(objective.encoder_loss(encoder, codes)[0].values())
    fitted, n_iter = fit_weights(objective, encoder, codes, max_iter=20, iteration=0)
    assert 0 < n_iter <= 20
    assert sum(objective.encoder_loss(fitted, codes)[0].values()) < before


def test_weight_step_keeps_blas_threads(clustered_data):
    X = clustered_data / np.abs(clustered_data).max()
    rng = np.random.default_rng(0)
    codes = rng.choice([-1.0, 1.0], size=(X.shape[0], 6))
    objective = UHObjective(X, LAMBDAS)
    default_threads = [library["num_threads"] for library in threadpool_info()]
    seen = []

    class RecordingObjective:
        term_names = objective.term_names

        def encoder_loss(self, layers, codes):
            seen.append([library["num_threads"] for library in threadpool_info()])
            return objective.encoder_loss(layers, codes)

    fit_weights(RecordingObjective(), tiny_encoder(X.shape[1], rng), codes, max_iter=3, iteration=0)
    assert seen
    assert all(threads == default_threads for threads in seen)
    assert [library["num_threads"] for library in threadpool_info()] == default_threads


def tiny_encoder(n_features, rng):
    return [
        Layer(rng.normal(size=(12, n_features)), np.zeros(12), SIGMOID),
        Layer(rng.normal(size=(8, 12)), np.zeros(8), SIGMOID),
        Layer(rng.normal(size=(6, 8)), np.zeros(6), IDENTITY),
    ]


def test_fit_history_and_codes(fitted_model, clustered_data):
    codes = fitted_model.encode(clustered_data)
    assert codes.shape == (240, 6)
    assert codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    history = fitted_model.history_
    assert history[0]["iteration"] == 0
    assert 2 <= len(history) <= SMALL["max_outer"] + 1
    for entry in history:
        assert set(UH_TERMS) <= set(entry)
        assert 0 <= entry["validation_map"] <= 1
        assert entry["seconds"] > 0
    best = max(entry["validation_map"] for entry in history)
    assert history[fitted_model.best_iteration_]["validation_map"] == best


def test_encode_applies_training_scaling(fitted_model, clustered_data):
    minimum = clustered_data.min(axis=0)
    scale = np.ptp(clustered_data, axis=0).max()
    assert fitted_model.input_scale_ == pytest.approx(scale)
    scaled = ((clustered_data[:20] - minimum) / scale).astype(np.float32)
    np.testing.assert_array_equal(fitted_model.encode(clustered_data[:20]), encode_bits(fitted_model.layers_, scaled))


def test_early_stopping_restores_best(clustered_data, monkeypatch):
    scores = iter([0.2, 0.4, 0.3, 0.9])
    seen = []

    def fake_validation(self, layers):
        seen.append(copy.deepcopy(layers))
        return next(scores)

    monkeypatch.setattr(training.RetrievalValidation, "__call__", fake_validation)
    model = UHBDNN(6, **{**SMALL, "max_outer": 5}).fit(clustered_data)

    assert model.best_iteration_ == 1
    assert [entry["validation_map"] for entry in model.history_] == [0.2, 0.4, 0.3]
    assert len(seen) == 3
    for kept, best in zip(model.layers_, seen[1]):
        np.testing.assert_array_equal(kept.weight, best.weight)
        np.testing.assert_array_equal(kept.bias, best.bias)
    assert not np.array_equal(model.layers_[0].weight, seen[2][0].weight)


def test_training_runs_max_outer_while_improving(clustered_data, monkeypatch):
    scores = iter(np.linspace(0.1, 0.9, 10))
    monkeypatch.setattr(training.RetrievalValidation, "__call__", lambda self, layers: next(scores))
    model = UHBDNN(6, **{**SMALL, "max_outer": 2}).fit(clustered_data)
    assert len(model.history_) == 3
    assert model.best_iteration_ == 2


def test_nan_objective_names_iteration_and_term(clustered_data, monkeypatch):
    original_loss = UHObjective.encoder_loss
    original_update = UHObjective.update_codes
    state = {"b_steps": 0}

    def counting_update(self, layers, codes):
        state["b_steps"] += 1
        return original_update(self, layers, codes)

    def broken_loss(self, layers, codes):
        terms, gradient = original_loss(self, layers, codes)
        if state["b_steps"] == 2:
            terms["balance"] = float("nan")
        return terms, gradient

    monkeypatch.setattr(training.RetrievalValidation, "__call__", lambda self, layers: 0.1 * (1 + state["b_steps"]))
    monkeypatch.setattr(UHObjective, "update_codes", counting_update)
    monkeypatch.setattr(UHObjective, "encoder_loss", broken_loss)
    model = UHBDNN(6, **SMALL)
    with pytest.raises(NonFiniteObjectiveError, match=r"balance is nan at outer iteration 2") as error:
        model.fit(clustered_data)
    assert error.value.iteration == 2
    assert error.value.term == "balance"
    with pytest.raises(RuntimeError, match="not fitted"):
        model.encode(clustered_data)


def test_nan_gradient_detected(clustered_data, monkeypatch):
    original_loss = UHObjective.encoder_loss

    def broken_loss(self, layers, codes):
        terms, gradient = original_loss(self, layers, codes)
        gradient[0][0][0, 0] = np.inf
        return terms, gradient

    monkeypatch.setattr(UHObjective, "encoder_loss", broken_loss)
    with pytest.raises(NonFiniteObjectiveError, match=r"gradient is inf at outer iteration 0"):
        UHBDNN(6, **SMALL).fit(clustered_data)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_fit_rejects_non_finite_input(clustered_data, bad_value):
    X = clustered_data.copy()
    X[5, 3] = bad_value
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
        UHBDNN(6, **SMALL).fit(X)


def test_encode_rejects_non_finite_input(fitted_model, clustered_data):
    X = clustered_data[:4].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        fitted_model.encode(X)


def test_encode_rejects_wrong_feature_count(fitted_model, clustered_data):
    with pytest.raises(ValueError, match="X has 19 features, the model was trained on 20"):
        fitted_model.encode(clustered_data[:, :19])


def test_fit_rejects_constant_input():
    with pytest.raises(ValueError, match="X is constant"):
        UHBDNN(6, **SMALL).fit(np.ones((100, 20)))


def test_same_seed_identical_codes(fitted_model, clustered_data):
    again = UHBDNN(6, **SMALL).fit(clustered_data)
    np.testing.assert_array_equal(again.encode(clustered_data), fitted_model.encode(clustered_data))
    for first, second in zip(again.layers_, fitted_model.layers_):
        np.testing.assert_array_equal(first.weight, second.weight)


def test_save_load_round_trip(fitted_model, clustered_data, tmp_path):
    path = tmp_path / "uh_bdnn.npz"
    fitted_model.save(path)
    loaded = UHBDNN.load(path)
    np.testing.assert_array_equal(loaded.encode(clustered_data), fitted_model.encode(clustered_data))
    assert loaded.history_ == fitted_model.history_
    assert loaded.best_iteration_ == fitted_model.best_iteration_
    assert loaded.hidden == SMALL["hidden"]
    assert loaded.dtype == "float32"
    np.testing.assert_array_equal(loaded.decoder_.weight, fitted_model.decoder_.weight)


def test_load_rejects_other_archives(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, values=np.arange(3))
    with pytest.raises(ValueError, match="not a saved UHBDNN model"):
        UHBDNN.load(path)


def test_unusual_code_length_needs_hidden(clustered_data):
    with pytest.raises(ValueError, match=r"no default hidden sizes for n_bits=12.*pass hidden=\(n1, n2\)"):
        UHBDNN(12).fit(clustered_data)


def test_default_hidden_sizes():
    assert UHBDNN(16)._hidden_sizes() == (90, 30)
    assert UHBDNN(32)._hidden_sizes() == (120, 50)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hidden": (12, 4)}, "n_bits <= n2 <= n1"),
        ({"hidden": (12,)}, "hidden must be two positive integers"),
        ({"lambdas": (1.0, -1.0, 0.0, 0.0)}, "lambdas must be 4 finite non-negative"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"lbfgs_iter": 0}, "lbfgs_iter must be an integer >= 1, got 0"),
        ({"hidden": (30, 8)}, r"hidden\[0\]=30 exceeds the number of features \(20\)"),
        ({"validation_k": 500}, "validation_k=500 exceeds"),
    ],
)
def test_invalid_settings_rejected(clustered_data, settings, message):
    with pytest.raises(ValueError, match=message):
        UHBDNN(6, **{**SMALL, **settings}).fit(clustered_data)
