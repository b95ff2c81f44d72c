"""How the viewer is asked, from outside the window, to open something: the requests (files, or
a study on a PACS node), the gradcam-viewer:// link, the message a second `gradcam-viewer`
hands the running viewer, and the queue that asks the user before a link is followed.

Plain data, no Qt and nothing heavy: the second process imports this before it knows whether it
starts a window, and must exit in well under a second when it does not (ui/single_instance.py
carries the messages; ui/launcher.py carries out the requests in the window)."""
