"""citystream command line, embedded servers for the demo and tests, simulator."""
