"""
Trial's test case classes with typed assertion methods, for mypy.

Twisted leaves some of trial's assertion methods unannotated, and mypy
names a method inherited by a test case class after that class, so calling
C{self.assertEqual} in a test counts as an untyped call in the tests
themselves.  Rather than exempting the whole test package from
C{disallow_untyped_calls} (which hid genuine untyped calls too), the test
modules take their base classes from here: at run time exactly trial's
classes; for the type checker, subclasses declaring the signatures of the
methods the tests use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.trial import unittest
from twisted.trial.unittest import FailTest, SkipTest

__all__ = ["FailTest", "SkipTest", "SynchronousTestCase", "TestCase"]

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    class _Typed(unittest.SynchronousTestCase):
        def assertEqual(self, first: Any, second: Any, msg: object = None) -> None:
            super().assertEqual(first, second, msg)  # type: ignore[no-untyped-call]

        def assertNotEqual(self, first: Any, second: Any, msg: object = None) -> None:
            super().assertNotEqual(first, second, msg)  # type: ignore[no-untyped-call]

        def assertTrue(self, condition: Any, msg: object = None) -> None:
            super().assertTrue(condition, msg)  # type: ignore[no-untyped-call]

        def assertFalse(self, condition: Any, msg: object = None) -> None:
            super().assertFalse(condition, msg)  # type: ignore[no-untyped-call]

        def assertIn(self, containee: Any, container: Any, msg: object = None) -> None:
            super().assertIn(containee, container, msg)  # type: ignore[no-untyped-call]

        def assertNotIn(self, containee: Any, container: Any, msg: object = None) -> None:
            super().assertNotIn(containee, container, msg)  # type: ignore[no-untyped-call]

        def assertIs(self, first: Any, second: Any, msg: object = None) -> None:
            super().assertIs(first, second, msg)  # type: ignore[no-untyped-call]

        def assertIsNot(self, first: Any, second: Any, msg: object = None) -> None:
            super().assertIsNot(first, second, msg)  # type: ignore[no-untyped-call]

        def assertIsInstance(
            self, instance: Any, classOrTuple: Any, message: object = None
        ) -> None:
            super().assertIsInstance(instance, classOrTuple, message)  # type: ignore[no-untyped-call]

        def assertNotIsInstance(  # type: ignore[override]
            self, instance: Any, classOrTuple: Any
        ) -> None:
            super().assertNotIsInstance(instance, classOrTuple)  # type: ignore[no-untyped-call]

        def assertRaises(  # type: ignore[override]
            self, exception: Any, f: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            return super().assertRaises(exception, f, *args, **kwargs)  # type: ignore[no-untyped-call]

        def mktemp(self) -> str:
            return cast(str, super().mktemp())  # type: ignore[no-untyped-call]

        def flushLoggedErrors(self, *errorTypes: type[BaseException]) -> list[Failure]:
            return cast("list[Failure]", super().flushLoggedErrors(*errorTypes))  # type: ignore[no-untyped-call]

        def failureResultOf(
            self, deferred: Deferred[Any], *expectedExceptionTypes: type[BaseException]
        ) -> Failure:
            return cast("Failure", super().failureResultOf(deferred, *expectedExceptionTypes))  # type: ignore[no-untyped-call]

        def assertNoResult(self, deferred: Deferred[Any]) -> None:
            super().assertNoResult(deferred)  # type: ignore[no-untyped-call]

        def patch(self, obj: object, attribute: str, value: object) -> None:
            super().patch(obj, attribute, value)  # type: ignore[no-untyped-call]

    class SynchronousTestCase(_Typed):
        """
        L{twisted.trial.unittest.SynchronousTestCase}, typed.
        """

    class TestCase(SynchronousTestCase, unittest.TestCase):
        """
        L{twisted.trial.unittest.TestCase}, typed.
        """

else:
    SynchronousTestCase = unittest.SynchronousTestCase
    TestCase = unittest.TestCase
