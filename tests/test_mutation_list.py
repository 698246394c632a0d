"""tools/mutation_check.py's planted bugs stay current: every snippet still occurs exactly once in the source and
every named test exists (the full check, which runs the tests on each mutation, is run before every stop)."""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location("mutation_check", os.path.join(ROOT, "tools/mutation_check.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_mutation_snippet_occurs_exactly_once_and_its_tests_exist():
    tool = _tool()
    assert len(tool.MUTATIONS) >= 17  # issue 24's ten, the seven caught before, and one per capability since
    assert tool.find_problems(ROOT) == []


def test_a_stale_snippet_is_reported(tmp_path):
    tool = _tool()
    (tmp_path / "rs3d").mkdir()
    (tmp_path / "rs3d" / "x.py").write_text("a = 1\na = 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    twice = tool.Mutation("twice", "rs3d/x.py", "a = 1", "a = 2", ("tests/test_x.py::test_x",), "")
    missing = tool.Mutation("missing", "rs3d/x.py", "b = 1", "b = 2", ("tests/test_x.py::test_y",), "")
    assert tool.find_problems(str(tmp_path), (twice, missing)) == [
        "twice: the original snippet occurs 2 times in rs3d/x.py",
        "missing: the original snippet occurs 0 times in rs3d/x.py", "missing: no test tests/test_x.py::test_y"]
