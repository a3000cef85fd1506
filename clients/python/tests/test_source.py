"""register(): what source goes, and what is refused before anything is sent (no gateway needed)."""

import functools
import textwrap
import unittest
import warnings

from ferry import Client, FunctionRefused
from ferry._source import check_source, function_source

# A port nothing listens on: a refusal must come before any request.
NOWHERE = Client(url="http://127.0.0.1:9", token="unused")


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        return fn(*a, **k)

    return wrapper


@traced
def decorated(x):
    return x + 1


class SourceTest(unittest.TestCase):
    def test_nested_def_is_dedented_and_sent_alone(self):
        def scale(x, factor=2):
            import math

            return math.floor(x * factor)

        name, source = function_source(scale)
        self.assertEqual(name, "scale")
        self.assertTrue(source.startswith("def scale(x, factor=2):\n"), source)
        namespace: dict = {}
        exec(compile(source, "<test>", "exec"), namespace)
        self.assertEqual(namespace["scale"](3.6), 7)

    def test_decorators_are_stripped(self):
        name, source = function_source(decorated)
        self.assertEqual(name, "decorated")
        self.assertNotIn("@traced", source)
        self.assertTrue(source.startswith("def decorated(x):"), source)

    def test_a_closure_is_refused_naming_its_free_variables(self):
        offset = 10

        def add_offset(x):
            return x + offset

        with self.assertRaises(FunctionRefused) as caught:
            NOWHERE.register(add_offset)
        self.assertEqual(caught.exception.code, "INVALID_FUNCTION_CODE")
        self.assertEqual(caught.exception.status, 0)
        self.assertIn("closure over offset", str(caught.exception))

    def test_a_lambda_is_refused(self):
        with self.assertRaises(FunctionRefused) as caught:
            NOWHERE.register(lambda x: x)
        self.assertIn("lambda", caught.exception.message)

    def test_a_builtin_is_refused(self):
        with self.assertRaises(FunctionRefused) as caught:
            NOWHERE.register(len)
        self.assertIn("not a Python function", caught.exception.message)

    def test_a_function_without_source_is_refused(self):
        namespace: dict = {}
        exec("def typed_at_a_prompt(x):\n    return x\n", namespace)
        with self.assertRaises(FunctionRefused) as caught:
            NOWHERE.register(namespace["typed_at_a_prompt"])
        self.assertIn("source of function typed_at_a_prompt is not available", caught.exception.message)

    def test_source_that_does_not_compile_is_refused_with_its_line(self):
        bad = textwrap.dedent(
            """\
            def f(x):
                return x +
            """
        )
        with self.assertRaises(FunctionRefused) as caught:
            check_source(bad, "f")
        self.assertIn("line 2", caught.exception.message)

    def test_module_globals_used_inside_warn(self):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            function_source(uses_a_global)
        self.assertTrue(any("uses functools from its module" in str(w.message) for w in seen), [str(w.message) for w in seen])

        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            function_source(imports_inside)
        self.assertEqual([str(w.message) for w in seen], [])


def uses_a_global(x):
    return functools.reduce(lambda a, b: a + b, x)


def imports_inside(x):
    import functools

    return functools.reduce(lambda a, b: a + b, x, len(x))


if __name__ == "__main__":
    unittest.main()
