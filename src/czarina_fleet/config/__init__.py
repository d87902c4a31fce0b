"""Configuration loaders: .czarina/config.json and legacy config.sh."""
