"""The exceptions that reach a user as a message instead of a traceback, and the exit status each ends with.

Anything the user can fix (a dataset name, a config value, a workdir, a checkpoint from another model) raises
`UserError` with a paragraph that says what is wrong and what to do; the entry points in experiments/ print it
and exit with the error's `exit_code`, so that a scheduler or a shell script can tell the outcomes apart:

  0   finished
  1   UserError: bad input (config, data, workdir, checkpoint); nothing was trained
  65  Diverged: training produced non-finite values; the newest finite checkpoint is kept
  74  StorageError: a checkpoint could not be written (disk full, I/O error); the previous one is kept
  75  Stopped: stopped on a signal (SIGTERM, Ctrl-C) after a checkpoint; rerun the same command to resume
  130 a second Ctrl-C: stopped at once, without a checkpoint

Programming errors stay ordinary exceptions so that their tracebacks survive.
"""


class UserError(Exception):
  """A problem with the user's input, explained in the message."""

  exit_code = 1


class Diverged(UserError):
  """Training produced non-finite values; no checkpoint of them was written."""

  exit_code = 65


class StorageError(UserError):
  """A checkpoint could not be written."""

  exit_code = 74


class Stopped(UserError):
  """The run stopped early on a signal, after saving a checkpoint to resume from."""

  exit_code = 75

  def __init__(self, message: str, state):
    super().__init__(message)
    self.state = state
