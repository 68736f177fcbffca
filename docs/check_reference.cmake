# Builds the API reference with the `docs` target's Doxyfile and fails when Doxygen reports any warning
# (an undocumented public class, function, member or enum value, a broken reference, ...), printing them.
#
#   cmake -DDOXYGEN=/usr/bin/doxygen -DDOXYFILE=<build>/docs/Doxyfile.docs -DWORK_DIR=<dir> -P check_reference.cmake
#
# The CTest test docs_reference_no_warnings runs this. It writes into WORK_DIR (its own Doxyfile, HTML and
# warning log), so it does not touch the `docs` target's build/docs/html.
cmake_minimum_required(VERSION 3.20)
foreach(var DOXYGEN DOXYFILE WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "check_reference: pass -D${var}=...")
  endif()
endforeach()
if(NOT EXISTS "${DOXYFILE}")
  message(FATAL_ERROR "check_reference: ${DOXYFILE} does not exist (configure the build with Doxygen installed)")
endif()
file(MAKE_DIRECTORY "${WORK_DIR}")
set(log "${WORK_DIR}/doxygen-warnings.txt")
file(REMOVE "${log}")
file(WRITE "${WORK_DIR}/Doxyfile"
     "@INCLUDE = \"${DOXYFILE}\"\n"
     "OUTPUT_DIRECTORY = \"${WORK_DIR}\"\n"
     "WARN_LOGFILE = \"${log}\"\n"
     "QUIET = YES\n")
execute_process(COMMAND "${DOXYGEN}" "${WORK_DIR}/Doxyfile" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "check_reference: doxygen exited with ${status}\n${out}${err}")
endif()
set(warnings "")
if(EXISTS "${log}")
  file(READ "${log}" warnings)
endif()
string(APPEND warnings "${err}")  # anything Doxygen printed instead of logging
string(STRIP "${warnings}" warnings)
if(NOT warnings STREQUAL "")
  string(REGEX MATCHALL "warning:" hits "${warnings}")
  list(LENGTH hits n)
  message(FATAL_ERROR "check_reference: Doxygen reported ${n} warning(s); document what they name "
          "(/// before a declaration or ///< after it):\n${warnings}")
endif()
message(STATUS "check_reference: the API reference builds without warnings")
