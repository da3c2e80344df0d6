"""One main per root script: cli/g_mask.py is g_mask.py's, cli/unet.py unet.py's, and so on.

Each main sets up logging and turns a UserError into one `error:` line and exit status 1 (common.py).
"""
