"""Small helpers shared by several subpackages."""
