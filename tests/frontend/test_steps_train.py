"""Steps (`<-`, simultaneous, params and state only) and `train` with each optimizer."""

import numpy as np
import pytest


def updates(module, step):
    return [(o.label, o.value) for o in module.function("model").outputs if o.step == step]


def test_step_updates_are_simultaneous(parse, evaluate):
    module = parse("""
        state a: f32[] = 1
        state b: f32[] = 2
        step swap {
            a <- b
            b <- a + b
        }
        """)
    func = module.function("model")
    (la, va), (lb, vb) = updates(module, "swap")
    assert (la, lb) == ("a", "b")
    assert va is func.args[1]  # b's value before the step
    feeds = dict(a=np.float32(1), b=np.float32(2))
    assert evaluate(module, "b", step="swap", **feeds) == 3


def test_step_outputs_come_after_every_fetchable_name(parse):
    module = parse("state c: i32[] = 0\nstep s { c <- c + 1 }\nlater = c * 2\n")
    outputs = module.function("model").outputs
    assert [(o.label, o.step) for o in outputs] == [("later", None), ("c", "s")]


def test_step_values_take_the_target_type(parse, sexpr):
    module = parse("""
        param W: f64[2, 3] = 0
        state n: i64[] = 0
        scope s {
            state v: f32[3] = 0
        }
        step reset {
            W <- 1
            n <- 0
            s.v <- [1, 2, 3]
        }
        step grow {
            W <- W + [1.0, 2.0, 3.0]
            n <- n + 1
        }
        """)
    assert sexpr(module, "W", "reset") == "(broadcast_to[shape=[2, 3]] 1.0:f64)"
    assert sexpr(module, "n", "reset") == "0:i64"
    assert sexpr(module, "s.v", "reset") == "[1.0, 2.0, 3.0]:f32"
    assert sexpr(module, "W", "grow") == "(add W [1.0, 2.0, 3.0]:f64)"
    assert sexpr(module, "n", "grow") == "(add n 1:i64)"


@pytest.mark.parametrize("text, message, line, col", [
    ("input x: f32[]\nstep s { x <- 1 }", "'x' is an input: a step can assign only params", 2,
     10),
    ("z = 1\nstep s { z <- 1 }", "'z' is a defined value: a step can assign only params", 2, 10),
    ("step s { q <- 1 }", "undefined name 'q'", 1, 10),
    ("state c: i32[] = 0\nstep s {\n c <- 1\n c <- 2\n}", "'c' is assigned twice in step 's'",
     4, 2),
    ("state c: i32[] = 0\nstep s { c <- 0.5 }", "'c' is i32[], but its new value is f32[]", 2,
     15),
    ("state c: f32[2] = 0\ninput x: f32[N]\nstep s { c <- x }",
     "'c' is f32[2], but its new value is f32[N]", 3, 15),
    ("state c: f32[] = 0\nstep s {\n}", "step 's' assigns nothing", 2, 6),
    ("state c: f32[] = 0\nstep c { c <- 1 }", "'c' is already defined", 2, 6),
    ("state c: f32[] = 0\nstep s { c <- c }\nz = s", "'s' is a step", 3, 5),
])
def test_step_errors(error, text, message, line, col):
    e = error(text + "\n")
    assert message in e.message
    assert (e.loc.line, e.loc.col) == (line, col)


def test_assigning_twice_notes_the_first_assignment(error):
    e = error("state c: i32[] = 0\nstep s {\n c <- 1\n c <- 2\n}\n")
    assert (e.loc.line, e.notes[0][0], e.notes[0][1].line) == (4, "first assigned here", 3)


MODEL = """
input x: f32[N, 2]
input y: f32[N]
input rate: f32[]
param W: f32[2] = 0.5
param b: f32[] = 0
param unused: f32[3] = 0
state count: f32[] = 0
loss = mean(square(sum(x * W, axis=1) + b - y))
"""


def test_train_sgd_updates_every_param_the_loss_depends_on(parse, sexpr):
    module = parse(MODEL + "train step = sgd(loss, lr=0.1)\n")
    assert [label for label, _ in updates(module, "step")] == ["W", "b"]
    assert sexpr(module, "W", "step") == "(sub W (mul 0.1:f32 (grad loss W)))"
    assert not any(d.name.startswith("step.") for d in module.decls)


def test_train_with_an_input_learning_rate_and_chosen_params(parse, sexpr):
    module = parse(MODEL + "train fit_b = sgd(loss, rate, params=[b])\n")
    assert [label for label, _ in updates(module, "fit_b")] == ["b"]
    assert sexpr(module, "b", "fit_b") == "(sub b (mul rate (grad loss b)))"


def test_train_momentum_and_adam_add_their_state(parse):
    module = parse(MODEL + "train m = momentum(loss, 0.1, momentum=0.5, nesterov=true)\n"
                   "train a = adam(loss)\n")
    state = [(d.name, str(d.type)) for d in module.decls if d.name.startswith(("m.", "a."))]
    assert state == [("m.velocity.W", "f32[2]"), ("m.velocity.b", "f32[]"), ("a.t", "i64[]"),
                     ("a.m.W", "f32[2]"), ("a.v.W", "f32[2]"), ("a.m.b", "f32[]"),
                     ("a.v.b", "f32[]")]
    func = module.function("model")
    assert [a.name for a in func.args] == [d.name for d in module.decls]
    assert [label for label, _ in updates(module, "m")] == ["m.velocity.W", "W",
                                                            "m.velocity.b", "b"]
    assert {label for label, _ in updates(module, "a")} == {
        "a.t", "a.m.W", "a.v.W", "W", "a.m.b", "a.v.b", "b"}
    assert func.steps == ("m", "a")


def test_train_inside_a_scope_and_fetching_with_a_train_step(parse):
    module = parse(MODEL + "scope opt {\n train go = sgd(loss, 0.1)\n}\n")
    assert module.function("model").steps == ("opt.go",)


@pytest.mark.parametrize("text, message", [
    ("train t = loss", "train needs an optimizer: sgd(loss, ...), momentum(loss, ...), adam"),
    ("train t = rmsprop(loss)", "train needs an optimizer"),
    ("train t = sgd(loss)", "sgd needs the argument 'lr'"),
    ("train t = sgd(loss, lr=0.1, beta=2)", "sgd has no argument 'beta'"),
    ("train t = sgd(x, 0.1)", "the loss must be a float scalar, got f32[N,2]"),
    ("train t = sgd(loss, 0.1, params=[count])", "'count' is a state: an optimizer trains only"),
    ("train t = sgd(loss, 0.1, params=[W, W])", "'W' is listed twice"),
    ("train t = sgd(loss, 0.1, params=W)", "params must be a list of params"),
    ("train t = sgd(mean(x), 0.1)", "the loss depends on no param"),
    ("train t = sgd(loss, x)", "lr must be a scalar number, got f32[N,2]"),
    ("train t = sgd(loss, 0.1)\ntrain t = sgd(loss, 0.1)", "'t' is already defined"),
    ("t = 1\ntrain t = sgd(loss, 0.1)", "'t' is already defined"),
    ("z = sgd(loss, 0.1)", "'sgd' is an optimizer: use it as `train step = sgd(loss, ...)`"),
])
def test_train_errors(error, text, message):
    e = error(MODEL + text + "\n")
    assert message in e.message
    assert e.loc.line == MODEL.count("\n") + text.count("\n") + 1
