"""Captions without writing them by hand: sd-scripts' own taggers run on a training project.

`wd14.py` declares the WD14 tagger's options once and builds its command; `staging.py` copies the
project's images into a private folder for the tagger and writes its captions back into the project
through the confined folder API; `process.py` runs the script as a watched, cancellable process tree;
`tag.py` ties them together (`caption_project`), for the node and the CLI alike.
"""
