module github.com/sealbridge/sealbridge/test/tools

go 1.26
