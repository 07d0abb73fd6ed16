// Compiled with -frecord-gcc-switches so that the binary carries its own
// compiler flags (section .GCC.command.line); optimization_test.py reads the
// -O flags from there. Nothing to run.
int main() { return 0; }
