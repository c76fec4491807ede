"""Stream processors: one package per sensor domain, plus the batch runner and Redis sink they share."""
