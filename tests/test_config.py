"""Every compiled kernel takes its numba options from ``fastnum._config`` (one floating-point contract):
``@njit(**NJIT_OPTIONS)`` for what Python calls, ``@compiled_helper`` for what only kernels call."""

import ast
from pathlib import Path

import numba
import pytest

import fastnum
from fastnum import _config

PACKAGE = Path(fastnum.__file__).parent
OPTION_NAMES = {"NJIT_OPTIONS", "PARALLEL_NJIT_OPTIONS"}
JIT_NAMES = {"njit", "jit", "vectorize", "guvectorize", "stencil", "cfunc"}


def _decorators():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    yield str(path.relative_to(PACKAGE)), node.name, decorator


def _name(node):
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)


def test_every_jit_decorator_uses_the_shared_options():
    checked = 0
    for module, function, decorator in _decorators():
        if _name(decorator) == "compiled_helper":  # HELPER_NJIT_OPTIONS by construction; inline at most
            checked += 1
            own = {kw.arg for kw in decorator.keywords} if isinstance(decorator, ast.Call) else set()
            assert own <= {"inline"} and not getattr(decorator, "args", []), f"{module}:{function} sets {own}"
            continue
        if _name(decorator) not in JIT_NAMES:
            continue
        checked += 1
        assert isinstance(decorator, ast.Call), f"{module}:{function} uses a bare @{_name(decorator)}"
        spread = [kw.value for kw in decorator.keywords if kw.arg is None]
        assert any(isinstance(v, ast.Name) and v.id in OPTION_NAMES for v in spread), \
            f"{module}:{function} does not take **NJIT_OPTIONS or **PARALLEL_NJIT_OPTIONS"
        own = {kw.arg for kw in decorator.keywords if kw.arg is not None}
        assert own <= {"inline"}, f"{module}:{function} sets its own numba options {own}"
        assert not decorator.args, f"{module}:{function} passes a signature or options positionally"
    assert checked >= 15  # the check saw the kernels


def test_the_compiled_dispatchers_carry_those_options():
    import importlib
    import pkgutil

    modules = [importlib.import_module(info.name)
               for info in pkgutil.walk_packages(fastnum.__path__, prefix="fastnum.")
               if info.name != "fastnum.__main__"]
    dispatchers = [obj for module in modules
                   for obj in vars(module).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]
    assert len(dispatchers) >= 40
    for dispatcher in dispatchers:
        options = dispatcher.targetoptions
        assert options.get("fastmath", False) is _config.FASTMATH, dispatcher.__name__
        assert options.get("error_model") == "numpy", dispatcher.__name__
        assert dispatcher._cache is not None and type(dispatcher._cache).__name__ != "NullCache"
        assert options.get("no_cfunc_wrapper") is True, dispatcher.__name__
        # a function without a CPython wrapper must refuse Python calls (running it would crash)
        assert bool(options.get("no_cpython_wrapper")) == isinstance(dispatcher, _config._HelperDispatcher), \
            dispatcher.__name__
    helpers = [d for d in dispatchers if isinstance(d, _config._HelperDispatcher)]
    assert len(helpers) >= 30


def test_a_helper_refuses_a_python_call_and_kernels_still_call_it():
    from numba import njit

    @_config.compiled_helper
    def plus_one(x):
        return x + 1.0

    @njit(**dict(_config.NJIT_OPTIONS, cache=False))
    def kernel(x):
        return plus_one(x) * 2.0

    plus_one._cache = numba.core.caching.NullCache()  # a function of this test: nothing to cache
    assert kernel(1.5) == 5.0
    with pytest.raises(TypeError, match="no Python entry point"):
        plus_one(1.5)
    assert plus_one.py_func(1.5) == 2.5


@pytest.mark.parametrize("options", [_config.NJIT_OPTIONS, _config.PARALLEL_NJIT_OPTIONS,
                                     _config.HELPER_NJIT_OPTIONS])
def test_the_options_keep_ieee_semantics(options):
    assert options["fastmath"] is False and options["cache"] is True


def test_the_package_imports_with_numba_jit_disabled():
    """``NUMBA_DISABLE_JIT=1`` (numba's debugging switch) makes ``njit`` return the Python function:
    ``compiled_helper`` then leaves it as it is, and fastnum still imports."""
    import os
    import subprocess
    import sys

    code = ("import fastnum\nfrom fastnum.kernels.perturbed_losses import _sample_caches\n"
            "assert type(_sample_caches).__name__ == 'function'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NUMBA_DISABLE_JIT="1"))
    assert done.returncode == 0, done.stderr


def _compiled_functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    _name(d) in JIT_NAMES | {"compiled_helper"} for d in node.decorator_list):
                yield str(path.relative_to(PACKAGE)), node


def _is_number(node):
    """A number written out, or ``np.nan`` / ``np.inf`` (what a fill may be: it cannot mismatch a shape)."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Attribute):
        return node.attr in {"nan", "inf"}
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


def test_no_kernel_copies_an_array_into_a_slice():
    """``a[i:j] = b`` (an array) in a kernel makes numba compile its shape-mismatch message, string
    formatting and all: about 3.5 s per process that compiles the kernel (numba's compile events showed
    ``raise_with_shape_context`` under the batch-norm and ``method="full"`` kernels). A loop, or a fill
    with a number, compiles none of it. A fill with a computed scalar is written as a loop too: the
    source cannot tell it from an array."""
    offenders, functions = [], 0
    for module, function in _compiled_functions():
        functions += 1
        for node in ast.walk(function):
            if not isinstance(node, ast.Assign) or _is_number(node.value):
                continue
            for target in node.targets:
                if isinstance(target, ast.Subscript) and any(isinstance(n, ast.Slice) for n in ast.walk(target.slice)):
                    offenders.append(f"{module}:{node.lineno} ({function.name})")
    assert functions >= 50  # the check saw the kernels and their helpers
    assert not offenders, "array copied into a slice in compiled code: " + ", ".join(offenders)
