/* core/master.c */
#include "core.h"
