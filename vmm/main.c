/* minivmm's entry point. Commands register themselves (lib/cli.h), so this
 * file never changes when a command, option or device is added. */
#include "lib/cli.h"

#include <signal.h>

int main(int argc, char **argv)
{
	/* A storage server that closes a connection must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return cli_main(argc, argv);
}
