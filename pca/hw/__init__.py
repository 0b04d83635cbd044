"""Hardware adapters (gpiozero devices, the motor) and their simulated twins."""
