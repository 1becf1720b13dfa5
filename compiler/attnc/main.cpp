//===- main.cpp - The attnc executable ------------------------------------===//
//
// The driver itself is attnc::driverMain() (Driver.cpp), which libattnrt.so's
// attnrt_cli_main() runs too.
//
//===----------------------------------------------------------------------===//
#include "Driver.h"

int main(int argc, char **argv) { return attnc::driverMain(argc, argv); }
