/* core/db.c */
#include "core.h"
