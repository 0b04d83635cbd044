"""The pump's state machine and control loop, talking to the world through ports."""
