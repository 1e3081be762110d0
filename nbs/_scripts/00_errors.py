# %% [markdown]
# # Errors
#
# > The one error type of the project: a mistake the user can fix, told in one line.

# %%
#| default_exp errors

# %%
#| hide
from fastcore.test import test_fail


# %% [markdown]
# A mistake that the user can fix (a wrong value, a missing file, a config key that does not exist) raises `UserError`, whose message is one line naming the value or file and what is wrong. The command line prints that line and exits with status 2; every other exception is a bug and keeps its traceback. Every module raises it, so it lives in a module of its own that imports nothing. `UserError` is a `ValueError`, so library callers that catch `ValueError` keep working.

# %%
#| export
class UserError(ValueError):
    "A problem the user can fix; its message is one line naming the file or value and what is wrong."


# %%
def batch_size(value: int) -> int:
    "A check as the project writes them: the value, or one line naming it and what is wrong."
    if value < 1:
        raise UserError(f"train.batch_size = {value}: must be an integer >= 1")
    return value

test_fail(lambda: batch_size(0), exc=ValueError, contains="train.batch_size = 0: must be an integer >= 1")
assert issubclass(UserError, ValueError)
