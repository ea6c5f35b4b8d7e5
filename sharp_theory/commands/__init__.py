"""Single-run commands (``sharp-theory run NAME ...``). Each module defines NAME, HELP,
``add_arguments(parser)`` and ``main(args) -> exit code``; the CLI discovers them."""
