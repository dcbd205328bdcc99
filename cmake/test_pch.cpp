// The source of ioas_test_pch_exe and ioas_test_pch_lib
// (cmake/IoasTestBuild.cmake), the targets whose precompiled headers the test
// programs reuse.
int main() { return 0; }
