#include "caregate/cli/cli.h"

int main(int argc, char** argv) { return caregate::cli::RunCli(argc, argv); }
