/* core/conn.c */
#include "core.h"
