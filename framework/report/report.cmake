# framework/report/report.cmake — where heed::report::write_html finds Chart.js (included by the top-level
# CMakeLists.txt after the heed target). The report inlines Debian's libjs-chart.js (the UMD build) into
# every report.html; its path is found here and compiled into framework/report/html.cpp, so an installed
# heed and the heed-report tool need no other file. Without the package the library still builds and
# write_html throws a heed::Error naming the package (apt-get install libjs-chart.js, then cmake again).
find_file(HEED_CHART_JS NAMES chart.umd.js chart.min.js Chart.min.js
          PATHS /usr/share/javascript/chart.js /usr/share/nodejs/chart.js/dist NO_DEFAULT_PATH
          DOC "Chart.js (UMD build) that heed::report::write_html inlines into report.html")
if(HEED_CHART_JS)
  set(heed_chart_js_path "${HEED_CHART_JS}")
  message(STATUS "heed: Chart.js for run reports: ${HEED_CHART_JS}")
else()
  set(heed_chart_js_path "")
  message(STATUS "heed: Chart.js not found: heed-report and heed::report::write_html will fail until "
                 "libjs-chart.js is installed (apt-get install libjs-chart.js) and cmake runs again")
endif()
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/html.cpp PROPERTIES
  COMPILE_DEFINITIONS "HEED_CHART_JS_PATH=\"${heed_chart_js_path}\"")
