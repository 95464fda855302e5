/* core/runner.c */
#include "core.h"
