"""The physics of the fluid path: syringe, line, transducer dome, needle and tissue."""
