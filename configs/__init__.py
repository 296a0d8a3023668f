"""YAML configs shipped as package data: methods/, splits/, bench/."""
