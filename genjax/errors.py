"""The one exception type that reaches a user as a message instead of a traceback.

Anything the user can fix (a dataset name, a config value, a workdir, a checkpoint from another model) raises
`UserError` with a paragraph that says what is wrong and what to do; experiments/ prints it and exits non-zero.
Programming errors stay ordinary exceptions so that their tracebacks survive.
"""


class UserError(Exception):
  """A problem with the user's input, explained in the message."""
