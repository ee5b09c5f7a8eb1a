// train/commands.h: the subcommands of the dydit program. Each takes its argv (argv[0] is the
// command name) and returns the process exit status.
#pragma once

int cmd_train(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_flops(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_plot(int argc, char **argv);
