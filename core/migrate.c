/* core/migrate.c */
#include "core.h"
