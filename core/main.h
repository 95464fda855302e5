/*
 * core/main.h: the top of the core, where the layers are wired together.
 *
 *   main.c        the gannet command line: loads the config and the
 *                 modules, runs the core's and the modules' commands;
 *   serve.c       `gannet serve`: what each process of the master does
 *                 (struct master_ops: database, certificates, listeners,
 *                 connections);
 *   localserve.c  `gannet localserve`: a complete local setup on a
 *                 private PostgreSQL cluster.
 *
 * The only place that may use every layer.
 */
#ifndef GANNET_MAIN_H
#define GANNET_MAIN_H

#include "net/internal.h"
#include "db/internal.h"
#include "auth/internal.h"
#include "store/internal.h"
#include "dns/internal.h"

#include <gannet/gannet.h>

/* Loads and checks the config at path, loads the modules, and serves
 * (master_serve with serve_ops).  Returns the exit code. */
int main_serve(const char *path, bool foreground);

/* What serving means in each process (serve.c). */
extern const struct master_ops serve_ops;

int localserve_main(int argc, char **argv);

#endif
