"""The shipped pipelines folder, installed as a package so that the tools find it wherever it is installed."""
