#!/usr/bin/perl
# kernels/cuda/emu/rewrite.pl SOURCE > COPY: a CUDA source for the host compiler (kernels/cuda/emu):
#   kernel<<<grid, block, shared, stream>>>(args)
#       -> emu::launch("kernel", address, emu::config(grid, block, shared, stream),
#                      [](auto... a) { kernel(a...); }, args)
#   extern __shared__ T name[];  ->  static T *const name = reinterpret_cast<T *>(emu_dynamic_shared);
# Nothing else changes; line numbers and the file name in diagnostics stay the original's. The
# kernel's address (for its attributes) is NULL for a template whose arguments are deduced.
use strict;
use warnings;

my $path = shift or die "usage: rewrite.pl SOURCE\n";
open(my $in, '<', $path) or die "error: $path: $!\n";
my $text = do { local $/; <$in> };
close($in);

my %templates = map { $_ => 1 } $text =~ /template\s*<[^;{]*?>\s*__global__\s+void\s+(\w+)/g;
my $args = qr/(\((?:[^()]++|(?-1))*+\))/;

# Keeps the line count: the newlines of the original text follow the one-line replacement.
sub same_lines {
    my ($original, $replacement) = @_;
    return $replacement . ("\n" x ($original =~ tr/\n//));
}

$text =~ s{(([A-Za-z_]\w*)(\s*<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*$args}{
    my ($whole, $kernel, $name, $targs, $config, $call) = ($&, $1, $2, $3, $4, $5);
    my $address = $templates{$name} && !defined $targs ? 'nullptr' : "(const void *)&$kernel";
    (my $label = $kernel) =~ s/\s+//g;
    s/\s*\n\s*/ /g for $config, $call;
    $call =~ s/^\(\s*(.*?)\s*\)$/$1/s;
    my $launch = "emu::launch(\"$label\", $address, emu::config($config), [](auto... a) { $kernel(a...); }";
    same_lines($whole, $launch . ($call eq '' ? ')' : ", $call)"));
}gse;

$text =~ s{extern\s+__shared__\s+([\w:]+)\s+(\w+)\s*\[\s*\]\s*;}{static $1 *const $2 = reinterpret_cast<$1 *>(emu_dynamic_shared);}g;

print "#line 1 \"$path\"\n$text";
