"""What the viewer shows and asks for, as plain data without Qt: the session controller, the
explanations and their byte-bounded cache, and the list of files to step through."""
