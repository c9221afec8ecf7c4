"""The model file's envelope: the format's name and version, shared by saving (the models)
and loading (``modelfile``) so neither imports the other."""

FORMAT = "fastseg-model"
# 2: the preprocessing is one "preprocessor" object (format 1 had "scaling", "imputation",
# "pca" and "categories" beside the centres; such files still load).
FORMAT_VERSION = 2
