"""Tasks: readers per benchmark, records, encoding, metrics and the task registry.

Usage::

    from adaprefix.tasks import get_task
    task = get_task("rte")
    train = task.load("train", "../shared/data")
"""

from .errors import DataError
from .records import ChoiceExample, PairExample, TokenExample
from .registry import TASKS, Task, get_task

__all__ = ["TASKS", "ChoiceExample", "DataError", "PairExample", "Task", "TokenExample", "get_task"]
