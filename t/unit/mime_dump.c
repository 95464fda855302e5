/*
 * t/unit/mime_dump: parses a message file with the streaming MIME parser
 * and prints the result as JSON (gn_mime_to_json_string) on stdout; for
 * t/integration/070-mime-python.t and for looking at a message by hand.
 *
 *   mime_dump [-c CHUNK] [-l DEPTH,HEADER,PARTS,FIELDS] FILE|-
 *
 * -c feeds the parser CHUNK bytes at a time (default 65536).  Exit 0, or 2
 * for bad usage, 1 when the file cannot be read.
 */
#include "mail/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gannet/mime.h>

int main(int argc, char **argv)
{
	size_t chunk = 65536;
	struct gn_mime_limits lim;
	gn_mime_limits_init(&lim);
	int c;
	while ((c = getopt(argc, argv, "c:l:")) != -1) {
		switch (c) {
		case 'c':
			chunk = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			if (sscanf(optarg, "%u,%zu,%u,%u", &lim.max_depth, &lim.max_header_size,
				   &lim.max_parts, &lim.max_headers) != 4) {
				fprintf(stderr, "mime_dump: -l DEPTH,HEADER,PARTS,FIELDS\n");
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || chunk == 0) {
		fprintf(stderr, "usage: mime_dump [-c CHUNK] [-l DEPTH,HEADER,PARTS,FIELDS] FILE|-\n");
		return 2;
	}
	FILE *f = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
	if (f == NULL) {
		fprintf(stderr, "mime_dump: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	struct gn_mime_parser *p = gn_mime_parser_new(&lim);
	char *buf = gn_malloc(chunk);
	size_t n;
	while ((n = fread(buf, 1, chunk, f)) > 0)
		gn_mime_parser_feed(p, buf, n);
	int rc = ferror(f) ? 1 : 0;
	if (f != stdin)
		fclose(f);
	free(buf);
	struct gn_mime_message *msg;
	gn_mime_parser_finish(p, &msg);
	gn_mime_parser_free(&p);
	char *json = gn_mime_to_json_string(msg);
	printf("%s\n", json);
	gn_free(json);
	gn_mime_message_free(&msg);
	return rc;
}
