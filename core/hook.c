/* core/hook.c */
#include "core.h"
